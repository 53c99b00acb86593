import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../../deps.js';
import { testCheckoutRoutes } from './test-checkout.routes.js';
import { receiveLemonSqueezyWebhook, unmatchedPurchases } from './webhook.js';

/** The Lemon Squeezy webhook and the local test checkout, under /api/v1. */
export async function paymentRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  if (!deps.metrics.registry.getSingleMetric('pingvas_payments_unmatched_total'))
    deps.metrics.registry.registerMetric(unmatchedPurchases);
  // Signatures cover the exact bytes received: keep JSON bodies raw in this scope (and only here).
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  // The test checkout's HTML form posts an empty urlencoded body.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, _body, done) =>
    done(null, null),
  );

  app.post('/api/v1/webhooks/lemon-squeezy', async (req, reply) => {
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const signature = req.headers['x-signature'];
    const result = await receiveLemonSqueezyWebhook(deps, raw, typeof signature === 'string' ? signature : undefined);
    return reply.code(result.status).send(result.body);
  });

  if (!deps.config.lemonSqueezyEnabled && deps.config.development) await testCheckoutRoutes(app, deps);
}
