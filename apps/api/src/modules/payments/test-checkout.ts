import { randomInt, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { schema } from '@pingvas/db';
import { PLANS } from '@pingvas/core';
import type { AppDeps } from '../../deps.js';
import { productName, productPriceCents, variantFor, type Product } from './catalog.js';
import { signWebhookBody } from './signature.js';
import { receiveLemonSqueezyWebhook } from './webhook.js';

/**
 * The development stand-in for Lemon Squeezy (no API key, never in production): a checkout
 * page served by the API whose "Pay (test)" button sends the provider's webhooks, correctly
 * signed, over HTTP to the real webhook route — so development exercises exactly the code
 * production runs. Payload shapes follow docs/lemon-squeezy.md. Its pages and routes are in
 * test-checkout.routes.ts.
 */

const INTENT_TTL_SECONDS = 3600;
const DEV_STORE_ID = 1;
/** `meta.webhook_id` names the store's webhook configuration, the same on every delivery. */
const DEV_WEBHOOK_ID = '00000000-0000-4000-8000-00000000d3b0';

export const intentSchema = z.object({
  id: z.string(),
  userId: z.string(),
  email: z.string(),
  product: z.union([
    z.object({ kind: z.literal('subscription'), tier: z.enum(['starter', 'pro']) }),
    z.object({ kind: z.literal('credits'), pack: z.union([z.literal(1000), z.literal(5000), z.literal(10000)]) }),
  ]),
});
export type Intent = z.infer<typeof intentSchema>;

export async function createTestCheckout(
  deps: AppDeps,
  input: { userId: string; email: string; product: Product },
  apiOrigin: string,
): Promise<{ url: string }> {
  const intent: Intent = { id: randomUUID(), ...input };
  await deps.redis.set(deps.keys.testCheckout(intent.id), JSON.stringify(intent), 'EX', INTENT_TTL_SECONDS);
  return { url: `${apiOrigin}/api/v1/test-checkout/${intent.id}` };
}

/** The provider's timestamp format: `2025-11-19T11:04:54.000000Z`. */
const providerTime = (d: Date) => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
const providerId = () => randomInt(10_000_000, 2_000_000_000);
const plusMonth = (d: Date) => new Date(d.getTime() + 30 * 24 * 3600 * 1000);

interface SubscriptionShape {
  id: number;
  customerId: number;
  orderId: number;
  variantId: number;
  email: string;
  status: string;
  cancelled: boolean;
  renewsAt: Date | null;
  endsAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  updatePaymentUrl: string;
}

function subscriptionObject(s: SubscriptionShape, tierName: string) {
  return {
    type: 'subscriptions',
    id: String(s.id),
    attributes: {
      store_id: DEV_STORE_ID,
      customer_id: s.customerId,
      order_id: s.orderId,
      order_item_id: s.orderId + 1,
      product_id: s.variantId - 1,
      variant_id: s.variantId,
      product_name: `Pingvas ${tierName}`,
      variant_name: 'Monthly',
      user_name: s.email.split('@')[0],
      user_email: s.email,
      status: s.status,
      status_formatted: s.status[0]!.toUpperCase() + s.status.slice(1),
      card_brand: 'visa',
      card_last_four: '4242',
      pause: null,
      cancelled: s.cancelled,
      trial_ends_at: null,
      billing_anchor: s.createdAt.getUTCDate(),
      urls: {
        update_payment_method: s.updatePaymentUrl,
        customer_portal: s.updatePaymentUrl,
        customer_portal_update_subscription: s.updatePaymentUrl,
      },
      renews_at: s.renewsAt && providerTime(s.renewsAt),
      ends_at: s.endsAt && providerTime(s.endsAt),
      created_at: providerTime(s.createdAt),
      updated_at: providerTime(s.updatedAt),
      test_mode: true,
    },
  };
}

function orderObject(o: {
  id: number;
  customerId: number;
  variantId: number;
  email: string;
  totalCents: number;
  name: string;
  at: Date;
}) {
  return {
    type: 'orders',
    id: String(o.id),
    attributes: {
      store_id: DEV_STORE_ID,
      customer_id: o.customerId,
      identifier: randomUUID(),
      order_number: o.id % 100_000,
      user_name: o.email.split('@')[0],
      user_email: o.email,
      currency: 'USD',
      currency_rate: '1.0000',
      subtotal: o.totalCents,
      discount_total: 0,
      tax: 0,
      total: o.totalCents,
      subtotal_usd: o.totalCents,
      total_usd: o.totalCents,
      status: 'paid',
      status_formatted: 'Paid',
      refunded: false,
      refunded_at: null,
      first_order_item: {
        id: o.id + 1,
        order_id: o.id,
        product_id: o.variantId - 1,
        variant_id: o.variantId,
        product_name: o.name,
        variant_name: 'Default',
        price: o.totalCents,
        quantity: 1,
        created_at: providerTime(o.at),
        updated_at: providerTime(o.at),
        test_mode: true,
      },
      urls: { receipt: 'https://example.invalid/receipt' },
      created_at: providerTime(o.at),
      updated_at: providerTime(o.at),
      test_mode: true,
    },
  };
}

function invoiceObject(i: {
  id: number;
  subscriptionId: number;
  customerId: number;
  email: string;
  billingReason: string;
  status: string;
  totalCents: number;
  at: Date;
}) {
  return {
    type: 'subscription-invoices',
    id: String(i.id),
    attributes: {
      store_id: DEV_STORE_ID,
      subscription_id: i.subscriptionId,
      customer_id: i.customerId,
      user_name: i.email.split('@')[0],
      user_email: i.email,
      billing_reason: i.billingReason,
      card_brand: 'visa',
      card_last_four: '4242',
      currency: 'USD',
      currency_rate: '1.0000',
      status: i.status,
      status_formatted: i.status[0]!.toUpperCase() + i.status.slice(1),
      refunded: false,
      refunded_at: null,
      subtotal: i.totalCents,
      discount_total: 0,
      tax: 0,
      total: i.totalCents,
      subtotal_usd: i.totalCents,
      total_usd: i.totalCents,
      urls: { invoice_url: 'https://example.invalid/invoice' },
      created_at: providerTime(i.at),
      updated_at: providerTime(i.at),
      test_mode: true,
    },
  };
}

type WebhookEvent = {
  name: string;
  custom?: Record<string, unknown>;
  data: { type: string; id: string; attributes: Record<string, unknown> };
};

/** Posts one signed event to this very server's webhook route, as the provider would. */
export async function deliver(app: FastifyInstance, secret: string, event: WebhookEvent): Promise<void> {
  const body = JSON.stringify({
    meta: {
      event_name: event.name,
      test_mode: true,
      webhook_id: DEV_WEBHOOK_ID,
      ...(event.custom ? { custom_data: event.custom } : {}),
    },
    data: event.data,
  });
  const address = app.server.address() as AddressInfo;
  const host = ['0.0.0.0', '::'].includes(address.address)
    ? '127.0.0.1'
    : address.family === 'IPv6'
      ? `[${address.address}]`
      : address.address;
  const response = await fetch(`http://${host}:${address.port}/api/v1/webhooks/lemon-squeezy`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      'X-Event-Name': event.name,
      'X-Signature': signWebhookBody(secret, body),
    },
    body,
  });
  if (response.status !== 200) throw new Error(`${event.name} answered ${response.status}: ${await response.text()}`);
}

/** What the provider sends when this intent is paid. */
export function eventsForPayment(deps: AppDeps, intent: Intent): WebhookEvent[] {
  const now = new Date();
  const variantId = variantFor(deps.config, intent.product)!;
  const customerId = providerId();
  const orderId = providerId();
  const priceCents = productPriceCents(intent.product);
  const order = orderObject({
    id: orderId,
    customerId,
    variantId,
    email: intent.email,
    totalCents: priceCents,
    name: productName(intent.product),
    at: now,
  });
  if (intent.product.kind === 'credits') {
    return [
      {
        name: 'order_created',
        custom: { user_id: intent.userId, kind: 'credits', pack: String(intent.product.pack) },
        data: order,
      },
    ];
  }
  const custom = { user_id: intent.userId, kind: 'subscription', tier: intent.product.tier };
  const subscriptionId = providerId();
  const subscription = subscriptionObject(
    {
      id: subscriptionId,
      customerId,
      orderId,
      variantId,
      email: intent.email,
      status: 'active',
      cancelled: false,
      renewsAt: plusMonth(now),
      endsAt: null,
      createdAt: now,
      updatedAt: now,
      updatePaymentUrl: `${deps.config.PUBLIC_URL.replace(/\/$/, '')}/billing`,
    },
    PLANS[intent.product.tier].name,
  );
  const invoice = invoiceObject({
    id: providerId(),
    subscriptionId,
    customerId,
    email: intent.email,
    billingReason: 'initial',
    status: 'paid',
    totalCents: priceCents,
    at: now,
  });
  return [
    { name: 'subscription_created', custom, data: subscription },
    { name: 'order_created', custom, data: order },
    { name: 'subscription_payment_success', custom, data: invoice },
  ];
}

/**
 * What the provider sends when the customer's plan changes (`PATCH /v1/subscriptions/{id}`):
 * the subscription with its new variant, through the same webhook code, in process — the
 * change is asked from a tRPC call, which has no server address to post to.
 */
export async function sendDevPlanChange(
  deps: AppDeps,
  sub: typeof schema.subscriptions.$inferSelect,
  tier: 'starter' | 'pro',
  email: string,
): Promise<void> {
  const variantId = variantFor(deps.config, { kind: 'subscription', tier })!;
  const event: WebhookEvent = {
    name: 'subscription_updated',
    custom: { user_id: sub.userId, kind: 'subscription', tier },
    data: subscriptionObject(
      {
        id: sub.providerSubscriptionId,
        customerId: sub.providerCustomerId ?? providerId(),
        orderId: sub.providerOrderId ?? providerId(),
        variantId,
        email,
        status: sub.status,
        cancelled: sub.cancelled,
        renewsAt: sub.renewsAt,
        endsAt: sub.endsAt,
        createdAt: sub.createdAt,
        updatedAt: new Date(),
        updatePaymentUrl: sub.updatePaymentUrl ?? `${deps.config.PUBLIC_URL.replace(/\/$/, '')}/billing`,
      },
      PLANS[tier].name,
    ),
  };
  const body = JSON.stringify({
    meta: { event_name: event.name, test_mode: true, webhook_id: DEV_WEBHOOK_ID, custom_data: event.custom },
    data: event.data,
  });
  const secret = deps.config.LEMONSQUEEZY_WEBHOOK_SECRET!;
  const reply = await receiveLemonSqueezyWebhook(deps, Buffer.from(body), signWebhookBody(secret, body));
  if (reply.status !== 200)
    throw new Error(`the plan change webhook answered ${reply.status}: ${JSON.stringify(reply.body)}`);
}

export const SIMULATED = [
  'subscription_payment_failed',
  'subscription_payment_recovered',
  'subscription_cancelled',
  'subscription_expired',
] as const;

/** The events the dev-only simulate route sends for the signed-in user's latest subscription. */
export function simulatedEvent(
  deps: AppDeps,
  name: (typeof SIMULATED)[number],
  sub: typeof schema.subscriptions.$inferSelect,
  email: string,
): WebhookEvent {
  const now = new Date();
  const custom = { user_id: sub.userId, kind: 'subscription', tier: sub.tier };
  if (name === 'subscription_payment_failed' || name === 'subscription_payment_recovered') {
    // One renewal invoice per period, as the provider has: its retries fail and finally recover under one id.
    const period = Math.floor((sub.renewsAt ?? sub.createdAt).getTime() / 86_400_000);
    return {
      name,
      data: invoiceObject({
        id: (sub.providerSubscriptionId * 31 + period) % 2_000_000_000,
        subscriptionId: sub.providerSubscriptionId,
        customerId: sub.providerCustomerId ?? providerId(),
        email,
        billingReason: 'renewal',
        status: name === 'subscription_payment_failed' ? 'void' : 'paid',
        totalCents: PLANS[sub.tier].priceUsdCents,
        at: now,
      }),
    };
  }
  const expired = name === 'subscription_expired';
  return {
    name,
    custom,
    data: subscriptionObject(
      {
        id: sub.providerSubscriptionId,
        customerId: sub.providerCustomerId ?? providerId(),
        orderId: sub.providerOrderId ?? providerId(),
        variantId: sub.variantId,
        email,
        status: expired ? 'expired' : 'cancelled',
        cancelled: true,
        renewsAt: sub.renewsAt,
        endsAt: expired ? now : (sub.renewsAt ?? plusMonth(now)),
        createdAt: sub.createdAt,
        updatedAt: now,
        updatePaymentUrl: sub.updatePaymentUrl ?? `${deps.config.PUBLIC_URL.replace(/\/$/, '')}/billing`,
      },
      PLANS[sub.tier].name,
    ),
  };
}
