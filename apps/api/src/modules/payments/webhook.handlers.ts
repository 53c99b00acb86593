import { and, eq, sql } from 'drizzle-orm';
import { z } from 'zod';
import { schema, type Tx } from '@pingvas/db';
import { CREDIT_PACKS, PLANS } from '@pingvas/core';
import type { AppDeps } from '../../deps.js';
import { grant, revokePurchased, setSubscriptionCredits } from '../credits/ledger.js';
import { queueEmail } from '../email/outbox.js';
import { productForVariant } from './catalog.js';
import { activate, appUrl, downgrade, findUser, hasEnded, lockProviderSubscription, type UserRow } from './subscriptions.js';
import type { InvoiceAttributes, KnownEvent, OrderAttributes, SubscriptionAttributes, WebhookEnvelope } from './webhook.schema.js';

export interface EventOutcome {
  outcome: 'applied' | 'ignored' | 'stale' | 'unknown_user';
  userId: string | null;
  note?: string;
}

/**
 * Thrown when an event cannot be applied yet but will be once an earlier one lands (an
 * invoice for a subscription we have not seen): the route answers 503 so the provider
 * retries, and nothing is recorded.
 */
export class RetryLater extends Error {}

export interface EventContext {
  tx: Tx;
  deps: AppDeps;
  envelope: WebhookEnvelope;
  /** The recorded event's dedupe key, for effects that happen once per delivery of a distinct event. */
  dedupeKey: string;
}

const uuid = z.uuid();

/** The user named by `meta.custom_data.user_id` (a string or a number on the wire). */
async function customUser(ctx: EventContext): Promise<UserRow | null> {
  const raw = ctx.envelope.meta.custom_data?.user_id;
  const parsed = uuid.safeParse(typeof raw === 'number' ? String(raw) : raw);
  return parsed.success ? findUser(ctx.tx, parsed.data) : null;
}

export async function applyEvent(ctx: EventContext, event: KnownEvent): Promise<EventOutcome> {
  switch (event.kind) {
    case 'subscription': return onSubscription(ctx, event.name, event.attributes);
    case 'invoice': return onInvoice(ctx, event.name, event.attributes);
    case 'order': return onOrder(ctx, event.name, event.attributes);
    case 'other': return { outcome: 'ignored', userId: null, note: 'event not used by this studio' };
  }
}

/**
 * Every subscription event carries the whole subscription, so created / updated / cancelled /
 * resumed / expired share one path: sync the row unless the event is older than what we
 * hold, then bring the user in line with the row. Whichever event first shows us a live
 * subscription (usually `created`, but `updated` may overtake it) activates it; the
 * activation is keyed by the subscription, so it happens once.
 */
async function onSubscription(ctx: EventContext, name: string, a: SubscriptionAttributes): Promise<EventOutcome> {
  const { tx, deps } = ctx;
  const providerId = Number(ctx.envelope.data.id);
  const existing = await lockProviderSubscription(tx, providerId);
  const user = existing ? await findUser(tx, existing.userId) : await customUser(ctx);
  if (!user) return { outcome: 'unknown_user', userId: null, note: 'no user for custom_data.user_id' };

  if (existing?.providerUpdatedAt && a.updated_at < existing.providerUpdatedAt) {
    return { outcome: 'stale', userId: user.id, note: `updated_at ${a.updated_at.toISOString()} is older than ${existing.providerUpdatedAt.toISOString()}` };
  }
  const product = productForVariant(deps.config, a.variant_id);
  if (product?.kind !== 'subscription') {
    return { outcome: 'ignored', userId: user.id, note: `variant ${a.variant_id} is not a plan of this studio` };
  }
  const fields = {
    providerCustomerId: a.customer_id ?? null,
    providerOrderId: a.order_id ?? null,
    variantId: a.variant_id,
    tier: product.tier,
    status: a.status,
    cancelled: a.cancelled,
    renewsAt: a.renews_at,
    endsAt: a.ends_at,
    updatePaymentUrl: a.urls?.update_payment_method ?? null,
    customerPortalUrl: a.urls?.customer_portal ?? null,
    providerUpdatedAt: a.updated_at,
    updatedAt: sql`now()`,
  };
  const [sub] = existing
    ? await tx.update(schema.subscriptions).set(fields).where(eq(schema.subscriptions.id, existing.id)).returning()
    : await tx.insert(schema.subscriptions).values({ ...fields, userId: user.id, providerSubscriptionId: providerId }).returning();

  if (hasEnded(sub!)) {
    const done = await downgrade(tx, deps, sub!);
    return { outcome: 'applied', userId: user.id, note: done ? 'downgraded' : 'already downgraded' };
  }
  if (!existing || name === 'subscription_created') await activate(tx, deps, sub!, user);
  const clearsBanner = sub!.status === 'active' || sub!.status === 'on_trial';
  await tx.update(schema.users)
    .set({ tier: sub!.tier, ...(clearsBanner ? { bannerReason: null } : {}), updatedAt: sql`now()` })
    .where(eq(schema.users.id, user.id));
  return { outcome: 'applied', userId: user.id, note: sub!.status };
}

/**
 * Invoice events name their subscription, not the user (and no variant): the subscription row
 * supplies both. One we have not seen yet is most likely a `subscription_created` still in
 * flight, so the provider is asked to retry — except the initial payment, which needs nothing.
 */
async function onInvoice(ctx: EventContext, name: string, a: InvoiceAttributes): Promise<EventOutcome> {
  const { tx, deps } = ctx;
  const invoiceId = ctx.envelope.data.id;
  const sub = await lockProviderSubscription(tx, a.subscription_id);
  if (name === 'subscription_payment_success' && a.billing_reason !== 'renewal') {
    const userId = sub?.userId ?? (await customUser(ctx))?.id ?? null;
    return { outcome: 'ignored', userId, note: `${a.billing_reason} payment: the subscription events carry its effects` };
  }
  if (!sub) {
    const named = ctx.envelope.meta.custom_data?.user_id;
    if (named !== undefined && !(await customUser(ctx))) return { outcome: 'unknown_user', userId: null, note: 'no user for custom_data.user_id' };
    throw new RetryLater(`subscription ${a.subscription_id} not known yet`);
  }
  const user = (await findUser(tx, sub.userId))!;
  const plan = PLANS[sub.tier];
  const allocateRenewal = async () => {
    if (a.billing_reason !== 'renewal' || hasEnded(sub)) return;
    await setSubscriptionCredits(tx, {
      userId: user.id,
      key: `allocation:ls-invoice:${invoiceId}`,
      type: 'monthly_allocation',
      amount: plan.monthlyCredits,
      reference: `ls-sub:${sub.providerSubscriptionId}`,
      description: `${plan.name}: new period`,
    });
  };

  switch (name) {
    case 'subscription_payment_success':
      if (hasEnded(sub)) return { outcome: 'ignored', userId: user.id, note: 'renewal paid for an ended subscription' };
      await allocateRenewal();
      return { outcome: 'applied', userId: user.id, note: 'renewal: subscription credits reset' };
    case 'subscription_payment_failed': {
      const [updated] = await tx.update(schema.subscriptions)
        .set({ paymentFailedCount: sql`${schema.subscriptions.paymentFailedCount} + 1`, updatedAt: sql`now()` })
        .where(eq(schema.subscriptions.id, sub.id)).returning();
      const count = updated!.paymentFailedCount;
      await tx.update(schema.users).set({ bannerReason: 'payment_failed', updatedAt: sql`now()` })
        .where(and(eq(schema.users.id, user.id), sql`${schema.users.bannerReason} is distinct from 'subscription_cancelled'`));
      await queueEmail(tx, {
        userId: user.id,
        to: user.email,
        dedupeKey: `payment_failed:${ctx.dedupeKey}`,
        email: count === 1
          ? { template: 'payment_failed_first', planName: plan.name, updatePaymentUrl: sub.updatePaymentUrl }
          : { template: 'payment_failed_later', planName: plan.name, failedCount: count, updatePaymentUrl: sub.updatePaymentUrl, appUrl: appUrl(deps) },
      });
      return { outcome: 'applied', userId: user.id, note: `failed payments: ${count}` };
    }
    default: {
      // subscription_payment_recovered: the retried renewal went through. It resets the period
      // too, under the same invoice key as a payment_success for it, so either order counts once.
      await tx.update(schema.subscriptions).set({ paymentFailedCount: 0, updatedAt: sql`now()` }).where(eq(schema.subscriptions.id, sub.id));
      // Balance before user row, as everywhere in this module: one lock order, no deadlocks between webhooks.
      await allocateRenewal();
      await tx.update(schema.users).set({ bannerReason: null, updatedAt: sql`now()` })
        .where(and(eq(schema.users.id, user.id), eq(schema.users.bannerReason, 'payment_failed')));
      await queueEmail(tx, {
        userId: user.id,
        to: user.email,
        dedupeKey: `payment_recovered:ls-invoice:${invoiceId}`,
        email: { template: 'payment_recovered', planName: plan.name },
      });
      return { outcome: 'applied', userId: user.id, note: 'recovered' };
    }
  }
}

/**
 * Orders: a credit pack adds purchased credits once per order; a plan's first order adds
 * nothing (the subscription's activation allocates). A refund may overtake its order: it then
 * takes nothing, and the late order_created sees the applied refund and grants nothing.
 */
async function onOrder(ctx: EventContext, name: string, a: OrderAttributes): Promise<EventOutcome> {
  const { tx, deps } = ctx;
  const orderId = ctx.envelope.data.id;
  const product = productForVariant(deps.config, a.first_order_item.variant_id);
  const user = await customUser(ctx);
  if (product?.kind !== 'credits') {
    return { outcome: 'ignored', userId: user?.id ?? null, note: product ? 'plan order: the subscription allocates' : `unknown variant ${a.first_order_item.variant_id}` };
  }
  if (!user) return { outcome: 'unknown_user', userId: null, note: 'no user for custom_data.user_id' };
  await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`ls-order:${orderId}`}))`);
  const credits = CREDIT_PACKS[product.pack].credits;
  const purchaseKey = `purchase:ls-order:${orderId}`;

  if (name === 'order_created') {
    if (a.status !== 'paid') return { outcome: 'ignored', userId: user.id, note: `order ${a.status}` };
    if (a.refunded || (await refundRecorded(tx, orderId))) return { outcome: 'ignored', userId: user.id, note: 'order already refunded' };
    const entry = await grant(tx, {
      userId: user.id, key: purchaseKey, type: 'purchase', bucket: 'purchased', amount: credits,
      reference: `ls-order:${orderId}`, description: `${credits} credit pack`,
    });
    if (!entry.replayed) {
      await queueEmail(tx, {
        userId: user.id, to: user.email, dedupeKey: `credits_added:ls-order:${orderId}`,
        email: { template: 'credits_added', credits, appUrl: appUrl(deps) },
      });
    }
    return { outcome: 'applied', userId: user.id, note: entry.replayed ? 'already granted' : `granted ${credits}` };
  }

  const [purchase] = await tx.select({ id: schema.creditTransactions.id }).from(schema.creditTransactions)
    .where(eq(schema.creditTransactions.idempotencyKey, purchaseKey));
  if (!purchase) return { outcome: 'applied', userId: user.id, note: 'refunded before its purchase was recorded: nothing to take back' };
  const entry = await revokePurchased(tx, {
    userId: user.id, key: `refund:ls-order:${orderId}`, amount: credits,
    reference: `ls-order:${orderId}`, description: `${credits} credit pack refunded`,
  });
  return { outcome: 'applied', userId: user.id, note: `took back ${-entry.purchasedDelta} of ${credits}` };
}

async function refundRecorded(tx: Tx, orderId: string): Promise<boolean> {
  const rows = await tx.execute(sql`
    select 1 from webhook_events
    where provider = 'lemonsqueezy' and event_name = 'order_refunded' and outcome = 'applied' and payload->'data'->>'id' = ${orderId}
    limit 1`);
  return rows.length > 0;
}
