import { desc, eq } from 'drizzle-orm';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { schema, withUser } from '@pingvas/db';
import { CREDIT_PACKS, PLANS } from '@pingvas/core';
import type { AppDeps } from '../../deps.js';
import { sessionTokenFrom, userFromSessionToken } from '../../context.js';
import { productName, productPriceCents } from './catalog.js';
import { deliver, eventsForPayment, intentSchema, SIMULATED, simulatedEvent, type Intent } from './test-checkout.js';

/**
 * The test checkout's HTTP side (development only, see test-checkout.ts): the checkout page, its
 * "Pay (test)" action, and the route that simulates the provider's later subscription events.
 */

const escapeHtml = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem;color:#222}
.card{border:1px solid #ddd;border-radius:12px;padding:1.5rem}.price{font-size:2rem;font-weight:600}
button{font-size:1rem;padding:.7rem 1.4rem;border:0;border-radius:8px;background:#5b3df5;color:#fff;cursor:pointer}
.note{color:#595959;font-size:.85rem}</style></head><body><main>${body}</main></body></html>`;
}

function checkoutPage(deps: AppDeps, intent: Intent): string {
  const price = `$${(productPriceCents(intent.product) / 100).toFixed(2)}`;
  const detail =
    intent.product.kind === 'subscription'
      ? `${PLANS[intent.product.tier].monthlyCredits.toLocaleString('en-US')} credits every month`
      : `${CREDIT_PACKS[intent.product.pack].credits.toLocaleString('en-US')} credits that never expire`;
  return page(
    'Test checkout',
    `<div class="card">
<p class="note">Test checkout — a development stand-in for Lemon Squeezy. No money moves.</p>
<h1>${escapeHtml(productName(intent.product))}</h1>
<p class="price">${price}${intent.product.kind === 'subscription' ? ' <small>/ month</small>' : ''}</p>
<p>${escapeHtml(detail)}</p>
<p>Billed to ${escapeHtml(intent.email)}</p>
<form id="pay" method="post" action="/api/v1/test-checkout/${intent.id}/pay"><button type="submit">Pay (test)</button></form>
<script>
// Same request with the CSRF header the API asks of cookie-carrying posts; the plain form is the no-JS fallback.
document.getElementById('pay').addEventListener('submit', async (e) => {
  e.preventDefault();
  const r = await fetch(e.target.action, { method: 'POST', headers: { 'x-pingvas-csrf': '1', accept: 'application/json' } });
  if (r.ok) location.href = (await r.json()).redirect; else document.body.innerHTML = await r.text();
});
</script>
<p><a href="${escapeHtml(deps.config.PUBLIC_URL.replace(/\/$/, ''))}/billing">Cancel</a></p>
</div>`,
  );
}

async function sessionUser(deps: AppDeps, req: FastifyRequest) {
  const cookies = (req as FastifyRequest & { cookies?: Record<string, string | undefined> }).cookies;
  return userFromSessionToken(deps, sessionTokenFrom(req.headers, cookies));
}

/** Registered only without a Lemon Squeezy API key and outside production. */
export async function testCheckoutRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const secret = deps.config.LEMONSQUEEZY_WEBHOOK_SECRET!;
  const loadIntent = async (id: string) => {
    const raw = await deps.redis.get(deps.keys.testCheckout(id));
    return raw ? intentSchema.parse(JSON.parse(raw)) : null;
  };
  const gone = page(
    'Checkout expired',
    '<div class="card"><h1>This checkout has expired or was already paid.</h1></div>',
  );

  app.get<{ Params: { id: string } }>('/api/v1/test-checkout/:id', async (req, reply) => {
    const intent = await loadIntent(req.params.id);
    return reply
      .code(intent ? 200 : 404)
      .type('text/html; charset=utf-8')
      .send(intent ? checkoutPage(deps, intent) : gone);
  });

  app.post<{ Params: { id: string } }>('/api/v1/test-checkout/:id/pay', async (req, reply) => {
    // GETDEL: a double click pays once.
    const raw = await deps.redis.getdel(deps.keys.testCheckout(req.params.id));
    if (!raw) return reply.code(404).type('text/html; charset=utf-8').send(gone);
    const intent = intentSchema.parse(JSON.parse(raw));
    try {
      for (const event of eventsForPayment(deps, intent)) await deliver(app, secret, event);
    } catch (err) {
      req.log.error({ err }, 'test checkout webhook failed');
      return reply
        .code(502)
        .type('text/html; charset=utf-8')
        .send(
          page(
            'Payment failed',
            `<div class="card"><h1>The test payment's webhook failed.</h1><p>${escapeHtml(String(err))}</p></div>`,
          ),
        );
    }
    const redirect = `${deps.config.PUBLIC_URL.replace(/\/$/, '')}/billing?paid=1`;
    return req.headers.accept?.includes('application/json')
      ? reply.send({ ok: true, redirect })
      : reply.redirect(redirect, 303);
  });

  app.post<{ Params: { event: string } }>('/api/v1/test-checkout/simulate/:event', async (req, reply) => {
    const name = z.enum(SIMULATED).safeParse(req.params.event);
    if (!name.success) return reply.code(400).send({ error: `event must be one of ${SIMULATED.join(', ')}` });
    const user = await sessionUser(deps, req);
    if (!user) return reply.code(401).send({ error: 'Sign in first.' });
    const [sub] = await withUser(deps.db, user.id, (tx) =>
      tx
        .select()
        .from(schema.subscriptions)
        .where(eq(schema.subscriptions.userId, user.id))
        .orderBy(desc(schema.subscriptions.createdAt))
        .limit(1),
    );
    if (!sub) return reply.code(404).send({ error: 'This account has no subscription to simulate on.' });
    await deliver(app, secret, simulatedEvent(deps, name.data, sub, user.email));
    return reply.send({ ok: true, event: name.data, providerSubscriptionId: sub.providerSubscriptionId });
  });
}
