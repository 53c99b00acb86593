import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppDeps } from '../../deps.js';
import { scrape } from './collectors.js';

export const METRICS_PATH = '/metrics';

function presentsToken(req: FastifyRequest, expected: string): boolean {
  const presented = req.headers.authorization?.match(/^Bearer\s+(.+)$/i)?.[1]?.trim();
  if (!presented) return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * GET /metrics (Prometheus text format) and the HTTP duration histogram. Called on the
 * root instance, before the other routes, so its onResponse hook times every route.
 * A scrape must send `Authorization: Bearer <METRICS_TOKEN>`. Only explicit development on
 * loopback may leave METRICS_TOKEN unset (open /metrics); anywhere else the API refuses to start.
 */
export function metricsRoutes(app: FastifyInstance, deps: AppDeps): void {
  const { metrics, config } = deps;

  app.addHook('onResponse', async (req, reply) => {
    // The route pattern, never the raw URL: label values must stay few.
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.httpDuration.observe(
      { method: req.method, route, status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  app.get(METRICS_PATH, async (req, reply) => {
    if (config.METRICS_TOKEN && !presentsToken(req, config.METRICS_TOKEN)) {
      return reply.code(401).header('www-authenticate', 'Bearer realm="metrics"').send({ error: 'unauthorized' });
    }
    const body = await scrape(deps);
    return reply.header('content-type', metrics.registry.contentType).header('cache-control', 'no-store').send(body);
  });
}
