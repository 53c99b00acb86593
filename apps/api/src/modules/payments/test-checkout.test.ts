import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadApiConfig } from '../../config.js';
import { buildServer } from '../../server.js';
import { createTestApp, type TestApp } from '../../test/harness.js';
import { expectLedgerInvariants } from '../../test/invariants.js';
import { signSession } from '../auth/session.js';
import { PRODUCTION_ENV } from '../../test/production-env.test-support.js';
import { stateOf } from './webhook.test-support.js';

/** Development without a Lemon Squeezy account: no API key, the local test checkout. */
let app: TestApp;
let server: FastifyInstance;
let base: string;
beforeAll(async () => {
  app = await createTestApp({ PUBLIC_URL: 'http://studio.localhost' });
  server = await buildServer(app.deps);
  await server.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await server.close();
  await app.close();
});
afterEach(async () => {
  await expectLedgerInvariants(app.database.admin);
});

async function signedIn() {
  const user = await app.createUser();
  const token = await signSession(
    app.config.SESSION_SECRET,
    { userId: user.id, sessionVersion: user.sessionVersion },
    600,
  );
  const auth = { authorization: `Bearer ${token}` };
  const trpc = async (path: string, input: unknown) => {
    const r = await fetch(`${base}/trpc/${path}`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ json: input }),
    });
    expect(r.status).toBe(200);
    return ((await r.json()) as { result: { data: { json: { url: string } } } }).result.data.json;
  };
  return { user, auth, trpc };
}

describe('local test checkout (no LEMONSQUEEZY_API_KEY)', () => {
  it('config: a dev-only webhook secret outside production, none in production', () => {
    expect(app.config.lemonSqueezyEnabled).toBe(false);
    expect(app.config.LEMONSQUEEZY_WEBHOOK_SECRET).toBe('dev-only-lemonsqueezy-webhook-secret');
    // Outside development the dev secret is never used: a missing one stops the start.
    expect(() => loadApiConfig({ ...PRODUCTION_ENV, LEMONSQUEEZY_WEBHOOK_SECRET: '' })).toThrow(
      /LEMONSQUEEZY_WEBHOOK_SECRET is required/,
    );
    expect(() => loadApiConfig({ ...PRODUCTION_ENV, LEMONSQUEEZY_STORE_ID: '' })).toThrow(
      /LEMONSQUEEZY_STORE_ID is required when LEMONSQUEEZY_API_KEY is set/,
    );
  });

  it('subscribing: the page shows product and price; paying sends signed webhooks to the real route and redirects to billing', async () => {
    const { user, trpc } = await signedIn();
    const { url } = await trpc('payments.createCheckout', { tier: 'pro' });
    expect(url).toMatch(new RegExp(`^${base}/api/v1/test-checkout/[0-9a-f-]{36}$`));

    const page = await fetch(url);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('Pingvas Pro (monthly)');
    expect(html).toContain('$75.00');
    expect(html).toContain('Pay (test)');

    const paid = await fetch(`${url}/pay`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: '',
      redirect: 'manual',
    });
    expect(paid.status).toBe(303);
    expect(paid.headers.get('location')).toBe('http://studio.localhost/billing?paid=1');

    const state = await stateOf(app, user.id);
    expect(state.user).toEqual({ tier: 'pro', banner_reason: null });
    expect(state.balance).toMatchObject({ subscription_credits: 10_000 });
    expect(state.outbox).toEqual(['welcome']);
    const events = await app.database
      .admin`select event_name, outcome from webhook_events where user_id = ${user.id} order by received_at`;
    expect(events.map((e) => `${e.event_name}:${e.outcome}`)).toEqual([
      'subscription_created:applied',
      'order_created:ignored',
      'subscription_payment_success:ignored',
    ]);

    // Paying twice (a double click) pays once.
    expect((await fetch(`${url}/pay`, { method: 'POST', redirect: 'manual' })).status).toBe(404);
    expect((await fetch(url)).status).toBe(404);
  });

  it('buying a pack grants its credits (the JSON answer the page script uses)', async () => {
    const { user, trpc } = await signedIn();
    const { url } = await trpc('payments.createCreditCheckout', { pack: 5000 });
    expect(await (await fetch(url)).text()).toContain('$40.00');
    const paid = await fetch(`${url}/pay`, {
      method: 'POST',
      headers: { accept: 'application/json', 'x-pingvas-csrf': '1' },
    });
    expect(await paid.json()).toEqual({ ok: true, redirect: 'http://studio.localhost/billing?paid=1' });
    const state = await stateOf(app, user.id);
    expect(state.balance).toMatchObject({ purchased_credits: 5000 });
    expect(state.outbox).toEqual(['credits_added']);
  });

  it('simulate: payment failures set the banner user.me shows, expiry downgrades', async () => {
    const { user, auth, trpc } = await signedIn();
    const simulate = (event: string, headers: Record<string, string> = auth) =>
      fetch(`${base}/api/v1/test-checkout/simulate/${event}`, { method: 'POST', headers });
    expect((await simulate('subscription_payment_failed')).status).toBe(404);

    const { url } = await trpc('payments.createCheckout', { tier: 'starter' });
    await fetch(`${url}/pay`, { method: 'POST', redirect: 'manual' });
    expect((await simulate('subscription_payment_failed')).status).toBe(200);
    expect((await simulate('subscription_payment_failed')).status).toBe(200);
    const me = await app.callerFor(user).user.me();
    expect(me.banner).toMatchObject({
      reason: 'payment_failed',
      actionUrl: 'http://studio.localhost/billing?update-card=1',
    });
    let state = await stateOf(app, user.id);
    expect(state.subscriptions[0]).toMatchObject({ payment_failed_count: 2 });
    expect(state.outbox).toEqual(['payment_failed_first', 'payment_failed_later', 'welcome']);

    expect((await simulate('subscription_expired')).status).toBe(200);
    state = await stateOf(app, user.id);
    expect(state.user).toEqual({ tier: 'free', banner_reason: 'subscription_cancelled' });
    expect(state.balance).toMatchObject({ subscription_credits: 0 });

    expect((await simulate('order_created')).status).toBe(400);
    expect((await simulate('subscription_expired', {})).status).toBe(401);
  });
});
