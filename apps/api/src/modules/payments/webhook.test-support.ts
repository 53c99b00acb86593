import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { withSystem } from '@pingvas/db';
import { expectLedgerInvariants } from '../../test/invariants.js';
import {
  invoiceObject,
  orderObject,
  startFakeLemonSqueezy,
  subscriptionObject,
  type FakeLemonSqueezy,
  type SubscriptionInput,
  type WebhookEvent,
} from '@pingvas/testkit';
import { buildServer } from '../../server.js';
import { createTestApp, type TestApp } from '../../test/harness.js';
import { capture, hold } from '../credits/ledger.js';

/** Variant ids of the fake store, and the env that points the API at the fake. */
export const VARIANT = { starter: 501, pro: 502, 1000: 601, 5000: 605, 10000: 610 } as const;
export const WEBHOOK_SECRET = 'whsec-test-0123456789abcdef';

export interface PaymentsHarness {
  app: TestApp;
  fake: FakeLemonSqueezy;
  server: FastifyInstance;
  webhookUrl: string;
  close(): Promise<void>;
}

export async function startPaymentsHarness(env: Record<string, string> = {}): Promise<PaymentsHarness> {
  const fake = await startFakeLemonSqueezy({
    apiKey: 'ls-test-key',
    storeId: '77',
    variantIds: Object.values(VARIANT),
    webhookSecret: WEBHOOK_SECRET,
  });
  const app = await createTestApp({
    LEMONSQUEEZY_API_URL: fake.url,
    LEMONSQUEEZY_API_KEY: 'ls-test-key',
    LEMONSQUEEZY_STORE_ID: '77',
    LEMONSQUEEZY_WEBHOOK_SECRET: WEBHOOK_SECRET,
    LEMONSQUEEZY_VARIANT_STARTER: String(VARIANT.starter),
    LEMONSQUEEZY_VARIANT_PRO: String(VARIANT.pro),
    LEMONSQUEEZY_VARIANT_PACK_1000: String(VARIANT[1000]),
    LEMONSQUEEZY_VARIANT_PACK_5000: String(VARIANT[5000]),
    LEMONSQUEEZY_VARIANT_PACK_10000: String(VARIANT[10000]),
    PUBLIC_URL: 'http://studio.localhost',
    ...env,
  });
  const server = await buildServer(app.deps);
  await server.listen({ port: 0, host: '127.0.0.1' });
  const { port } = server.server.address() as AddressInfo;
  return {
    app,
    fake,
    server,
    webhookUrl: `http://127.0.0.1:${port}/api/v1/webhooks/lemon-squeezy`,
    async close() {
      await server.close();
      await fake.close();
      await app.close();
    },
  };
}

/** One harness per test file, the ledger invariants checked after every test. */
export function usePaymentsHarness(receive: (harness: PaymentsHarness) => void): void {
  let harness: PaymentsHarness;
  beforeAll(async () => {
    harness = await startPaymentsHarness();
    receive(harness);
  });
  afterAll(async () => {
    await harness.close();
  });
  afterEach(async () => {
    await expectLedgerInvariants(harness.app.database.admin);
  });
}

const T0 = Date.parse('2026-11-01T10:00:00Z');
/** A provider timestamp `minutes` after a fixed start. */
export const at = (minutes: number) => new Date(T0 + minutes * 60_000);

/**
 * Builds the events the provider would send for one customer. Provider ids are `base + n`
 * so two customers' histories differ only in their ids.
 */
export function customer(user: { id: string; email: string }, base: number) {
  const custom = (extra: Record<string, unknown>) => ({ user_id: user.id, ...extra });
  const subscription = (
    tier: 'starter' | 'pro',
    name: string,
    minutes: number,
    s: Partial<SubscriptionInput> = {},
  ): WebhookEvent => ({
    name,
    custom: custom({ kind: 'subscription', tier }),
    data: subscriptionObject({
      id: base + 1,
      orderId: base + 2,
      variantId: VARIANT[tier],
      email: user.email,
      createdAt: at(0),
      updatedAt: at(minutes),
      renewsAt: new Date(at(0).getTime() + 30 * 86_400_000),
      ...s,
    }),
  });
  const invoice = (
    name: string,
    invoiceId: number,
    billingReason: 'initial' | 'renewal',
    minutes: number,
    status: 'paid' | 'void' = 'paid',
  ): WebhookEvent => ({
    name,
    data: invoiceObject({
      id: base + invoiceId,
      subscriptionId: base + 1,
      billingReason,
      status,
      email: user.email,
      totalCents: 7500,
      updatedAt: at(minutes),
    }),
  });
  const order = (
    name: 'order_created' | 'order_refunded',
    orderId: number,
    variant: number,
    minutes: number,
    kind: Record<string, unknown>,
  ): WebhookEvent => ({
    name,
    custom: custom(kind),
    data: orderObject({
      id: base + orderId,
      variantId: variant,
      email: user.email,
      totalCents: 4000,
      status: name === 'order_refunded' ? 'refunded' : 'paid',
      updatedAt: at(minutes),
    }),
  });
  return {
    subscription,
    invoice,
    order,
    /** What a checkout of `tier` sends, in the provider's usual order. */
    checkout: (tier: 'starter' | 'pro') => [
      subscription(tier, 'subscription_created', 0),
      subscription(tier, 'subscription_updated', 0),
      order('order_created', 2, VARIANT[tier], 0, { kind: 'subscription', tier }),
      invoice('subscription_payment_success', 3, 'initial', 0),
    ],
    pack: (
      pack: 1000 | 5000 | 10000,
      orderId: number,
      minutes: number,
      name: 'order_created' | 'order_refunded' = 'order_created',
    ) => order(name, orderId, VARIANT[pack], minutes, { kind: 'credits', pack: String(pack) }),
  };
}

/** The whole observable payments state of a user, with provider ids folded so customers compare. */
export async function stateOf(app: TestApp, userId: string) {
  const fold = (s: string) => s.replace(/\d{6,}/g, (n) => String(Number(n) % 100_000));
  const sql = app.database.admin;
  const [user] = await sql`select tier, banner_reason from users where id = ${userId}`;
  const [balance] =
    await sql`select subscription_credits, purchased_credits, held_credits from credit_balances where user_id = ${userId}`;
  const subscriptions = await sql`
    select (provider_subscription_id % 100000)::int as sub, tier, status, cancelled, renews_at, ends_at, payment_failed_count,
           update_payment_url, provider_updated_at, variant_id::int
    from subscriptions where user_id = ${userId} order by provider_subscription_id`;
  const ledger = (
    await sql<
      { idempotency_key: string; type: string; subscription_delta: number; purchased_delta: number }[]
    >`select idempotency_key, type, subscription_delta, purchased_delta from credit_transactions where user_id = ${userId}`
  )
    .map((r) => ({ ...r, idempotency_key: fold(r.idempotency_key as string) }))
    .sort((a, b) => a.idempotency_key.localeCompare(b.idempotency_key));
  const outbox = (await sql`select template, dedupe_key from email_outbox where user_id = ${userId}`)
    .map((r) => r.template as string)
    .sort();
  return {
    user: { ...user },
    balance: { ...balance },
    ledger,
    outbox,
    subscriptions: subscriptions.map((s) => ({ ...s, update_payment_url: fold(String(s.update_payment_url)) })),
  };
}

export async function counts(app: TestApp) {
  const [row] = await app.database.admin`
    select (select count(*) from webhook_events)::int as events, (select count(*) from email_outbox)::int as emails,
           (select count(*) from subscriptions)::int as subscriptions, (select count(*) from credit_transactions)::int as ledger`;
  return { ...row };
}

/** Spends `amount` credits as a finished job would (hold, then capture all of it). */
export async function spend(app: TestApp, userId: string, amount: number, key: string): Promise<void> {
  await withSystem(app.deps.db, async (tx) => {
    const { hold: h } = await hold(tx, { userId, key: `hold:${key}`, amount });
    await capture(tx, { userId, holdId: h.id, amount });
  });
}

/** Sends events one after another, each expected to be taken (200). */
export async function deliverInOrder(h: PaymentsHarness, events: WebhookEvent[]): Promise<void> {
  for (const event of events) {
    const r = await h.fake.sendWebhook(h.webhookUrl, event);
    expect(r.status, `${event.name}: ${r.body}`).toBe(200);
  }
}
