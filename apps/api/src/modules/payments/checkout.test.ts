import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRPCError } from '@trpc/server';
import { signSession } from '../auth/session.js';
import { startCheckout } from './checkout.service.js';
import {
  counts,
  customer,
  deliverInOrder,
  startPaymentsHarness,
  VARIANT,
  type PaymentsHarness,
} from './webhook.test-support.js';

let h: PaymentsHarness;
beforeAll(async () => {
  h = await startPaymentsHarness({ LEMONSQUEEZY_TIMEOUT_MS: '300' });
});
afterAll(async () => {
  await h.close();
});

describe('payments.plans', () => {
  it('lists the tiers and packs with their prices, signed out', async () => {
    const plans = await h.app.callerFor(null).payments.plans();
    expect(plans.tiers.map((t) => [t.tier, t.priceUsdCents, t.monthlyCredits])).toEqual([
      ['free', 0, 0],
      ['starter', 2000, 2000],
      ['pro', 7500, 10_000],
    ]);
    expect(plans.packs).toEqual([
      { pack: 1000, credits: 1000, priceUsdCents: 1000 },
      { pack: 5000, credits: 5000, priceUsdCents: 4000 },
      { pack: 10000, credits: 10_000, priceUsdCents: 7000 },
    ]);
  });
});

describe('checkouts against the provider', () => {
  it('createCheckout sends the JSON:API body the provider expects and returns its URL', async () => {
    const user = await h.app.createUser();
    const { url } = await h.app.callerFor(user).payments.createCheckout({ tier: 'pro' });
    const sent = h.fake.checkouts.at(-1)!;
    expect(url).toBe(sent.url);
    expect(sent).toMatchObject({
      storeId: '77',
      variantId: String(VARIANT.pro),
      email: user.email,
      testMode: true,
      custom: { user_id: user.id, kind: 'subscription', tier: 'pro' },
      redirectUrl: 'http://studio.localhost/billing?paid=1',
    });
  });

  it('asks for a test-mode checkout only in explicit development or a staging deployment (LEMONSQUEEZY_ACCEPT_TEST_MODE)', async () => {
    const user = await h.app.createUser();
    const base = h.app.deps.config;
    for (const [config, testMode] of [
      [{ ...base, NODE_ENV: 'production' as const, development: false }, false],
      // NODE_ENV=development on a public PUBLIC_URL is production too.
      [{ ...base, NODE_ENV: 'development' as const, development: false }, false],
      [{ ...base, NODE_ENV: 'production' as const, development: false, LEMONSQUEEZY_ACCEPT_TEST_MODE: true }, true],
    ] as const) {
      await startCheckout(
        { ...h.app.deps, config },
        user,
        { kind: 'credits', pack: 1000 },
        'https://studio.example.com',
      );
      expect(h.fake.checkouts.at(-1), JSON.stringify(config.NODE_ENV)).toMatchObject({ testMode });
    }
  });

  it('createCreditCheckout names the pack variant and the pack in custom', async () => {
    const user = await h.app.createUser({ tier: 'starter' });
    const { url } = await h.app.callerFor(user).payments.createCreditCheckout({ pack: 5000 });
    expect(url).toMatch(/^https:\/\/pingvas-test\.lemonsqueezy\.com\/checkout\/custom\//);
    expect(h.fake.checkouts.at(-1)).toMatchObject({
      variantId: String(VARIANT[5000]),
      custom: { user_id: user.id, kind: 'credits', pack: '5000' },
    });
  });

  it('works through the real HTTP server with a session', async () => {
    const user = await h.app.createUser();
    const token = await signSession(
      h.app.config.SESSION_SECRET,
      { userId: user.id, sessionVersion: user.sessionVersion },
      600,
    );
    const response = await h.server.inject({
      method: 'POST',
      url: '/trpc/payments.createCreditCheckout',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ json: { pack: 1000 } }),
    });
    expect(response.statusCode).toBe(200);
    expect(response.json().result.data.json.url).toBe(h.fake.checkouts.at(-1)!.url);
  });

  it('refuses bad input, a signed-out caller, and the plan the user already has', async () => {
    const user = await h.app.createUser();
    await deliverInOrder(h, customer(user, 9_000_000).checkout('pro'));
    const caller = h.app.callerFor({ ...user, tier: 'pro' });
    await expect(caller.payments.createCheckout({ tier: 'free' as 'pro' })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
    await expect(caller.payments.createCreditCheckout({ pack: 2000 as 1000 })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
    await expect(caller.payments.createCheckout({ tier: 'pro' })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
      message: 'You are already on Pro.',
    });
    await expect(h.app.callerFor(null).payments.createCheckout({ tier: 'pro' })).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
    });
  });

  it.each([
    [401, 'SERVICE_UNAVAILABLE', 'PROVIDER_UNAVAILABLE', /temporarily unavailable/],
    [
      422,
      'BAD_REQUEST',
      'BAD_REQUEST',
      /could not prepare this checkout \(The variant is not available for purchase\.\)/,
    ],
    [429, 'SERVICE_UNAVAILABLE', 'PROVIDER_UNAVAILABLE', /busy right now/],
    [500, 'SERVICE_UNAVAILABLE', 'PROVIDER_UNAVAILABLE', /having trouble/],
  ] as const)(
    'a provider %i becomes a clear %s, and nothing is recorded as bought',
    async (status, trpcCode, domainCode, message) => {
      const user = await h.app.createUser();
      const before = await counts(h.app);
      h.fake.failNext({ status });
      const error = await h.app
        .callerFor(user)
        .payments.createCheckout({ tier: 'starter' })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TRPCError);
      expect(error).toMatchObject({ code: trpcCode, cause: { code: domainCode } });
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).toMatch(/Nothing was charged/);
      expect(await counts(h.app)).toEqual(before);
    },
  );

  it('a provider that does not answer in time becomes PROVIDER_UNAVAILABLE', async () => {
    const user = await h.app.createUser();
    h.fake.failNext({ delayMs: 1500 });
    await expect(h.app.callerFor(user).payments.createCreditCheckout({ pack: 10000 })).rejects.toMatchObject({
      code: 'SERVICE_UNAVAILABLE',
      message: expect.stringMatching(/did not answer in time/),
    });
  });
});

describe('the fake provider is strict', () => {
  const valid = (custom: Record<string, unknown>) =>
    JSON.stringify({
      data: {
        type: 'checkouts',
        attributes: { checkout_data: { email: 'a@b.test', custom } },
        relationships: {
          store: { data: { type: 'stores', id: '77' } },
          variant: { data: { type: 'variants', id: String(VARIANT.pro) } },
        },
      },
    });
  const post = (headers: Record<string, string>, body: string) =>
    fetch(`${h.fake.url}/v1/checkouts`, { method: 'POST', headers, body });
  const good = {
    accept: 'application/vnd.api+json',
    'content-type': 'application/vnd.api+json',
    authorization: 'Bearer ls-test-key',
  };

  it('checks the key, both media types and the body', async () => {
    expect((await post(good, valid({ user_id: 'u' }))).status).toBe(201);
    expect((await post({ ...good, authorization: 'Bearer wrong' }, valid({}))).status).toBe(401);
    expect((await post({ ...good, accept: 'application/json' }, valid({}))).status).toBe(406);
    expect((await post({ ...good, 'content-type': 'application/json' }, valid({}))).status).toBe(415);
    const camel = await post(good, valid({ userId: 'u' }));
    expect(camel.status).toBe(422);
    expect(((await camel.json()) as { errors: { source: { pointer: string } }[] }).errors[0]!.source.pointer).toBe(
      '/data/attributes/checkout_data/custom/userId',
    );
    expect((await post(good, valid({}).replace('"77"', '77'))).status).toBe(422);
  });
});
