import { and, eq, inArray, like, sql } from 'drizzle-orm';
import { z } from 'zod';
import { schema, type Tx } from '@pingvas/db';
import { CREDIT_PACKS, PLANS } from '@pingvas/core';
import type { AppDeps } from '../../deps.js';
import { grant, revokePurchased, revokeSubscription } from '../credits/ledger.js';
import { queueEmail } from '../email/outbox.js';
import { productForVariant } from './catalog.js';
import {
  activate,
  appUrl,
  applyRenewal,
  changePlan,
  downgrade,
  findUser,
  hasEnded,
  isPrimary,
  lockCustomer,
  lockProviderSubscription,
  reactivate,
  saveSubscription,
  syncCustomer,
  type SubscriptionRow,
  type UserRow,
} from './subscription-lifecycle.js';
import {
  orderAttributes,
  SUBSCRIPTION_EVENTS,
  type InvoiceAttributes,
  type KnownEvent,
  type OrderAttributes,
  type SubscriptionAttributes,
  type WebhookEnvelope,
} from './webhook.schema.js';

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
  /** Set when support (or the customer's own sign-in) links a purchase that matched nobody. */
  linkedUserId?: string;
}

const uuid = z.uuid();

/**
 * The customer an order or subscription event is for: the user our checkout named in
 * `custom_data.user_id`; without custom_data (a purchase outside our checkout), the one user
 * whose e-mail is the purchase's. A named user that does not exist matches nobody.
 */
async function matchUser(ctx: EventContext, email: string | null | undefined): Promise<UserRow | null> {
  if (ctx.linkedUserId) return findUser(ctx.tx, ctx.linkedUserId);
  const raw = ctx.envelope.meta.custom_data?.user_id;
  if (raw !== undefined && raw !== null) {
    const parsed = uuid.safeParse(typeof raw === 'number' ? String(raw) : raw);
    return parsed.success ? findUser(ctx.tx, parsed.data) : null;
  }
  if (!email) return null;
  const found = await ctx.tx
    .select()
    .from(schema.users)
    .where(sql`lower(${schema.users.email}) = lower(${email})`)
    .limit(2);
  return found.length === 1 ? found[0]! : null;
}

const unmatched = (what: string): EventOutcome => ({
  outcome: 'unknown_user',
  userId: null,
  note: `unmatched ${what}: no user for custom_data.user_id or the e-mail`,
});

export async function applyEvent(ctx: EventContext, event: KnownEvent): Promise<EventOutcome> {
  switch (event.kind) {
    case 'subscription':
      return onSubscription(ctx, event.name, event.attributes);
    case 'invoice':
      return onInvoice(ctx, event.name, event.attributes);
    case 'order':
      return onOrder(ctx, event.name, event.attributes);
    case 'other':
      return { outcome: 'ignored', userId: null, note: 'event not used by this studio' };
  }
}

const STATUS_ORDER = ['on_trial', 'active', 'paused', 'past_due', 'unpaid', 'cancelled', 'expired'];

/**
 * The ordering key of a subscription state: its `updated_at` to the microsecond, then — for
 * equal timestamps, which the provider sends (created and updated in one burst, the updated
 * one with an older renewal date) — the later renewal date, the later end, the later status,
 * the variant. Whatever the delivery order, the same state wins; the same state in other
 * bytes is not newer and changes nothing.
 */
function stateVersion(a: SubscriptionAttributes): string {
  const rank = STATUS_ORDER.indexOf(a.status);
  return [
    a.updated_at.iso,
    a.renews_at?.toISOString() ?? '',
    a.ends_at?.toISOString() ?? '',
    String(rank < 0 ? 9 : rank),
    String(a.variant_id).padStart(20, '0'),
  ].join('|');
}

/**
 * Every subscription event carries the whole subscription, so created / updated / cancelled /
 * resumed / paused / unpaused / plan_changed / expired share one path: sync the row when the
 * event is newer than what we hold, then bring credits and the user in line with the change.
 */
async function onSubscription(ctx: EventContext, name: string, a: SubscriptionAttributes): Promise<EventOutcome> {
  const { tx, deps } = ctx;
  const providerId = Number(ctx.envelope.data.id);
  const existing = await lockProviderSubscription(tx, providerId);
  const user = existing ? await findUser(tx, existing.userId) : await matchUser(ctx, a.user_email);
  if (!user) return unmatched('subscription');
  await lockCustomer(tx, user.id);

  const version = stateVersion(a);
  if (existing?.stateVersion && version <= existing.stateVersion) {
    return { outcome: 'stale', userId: user.id, note: `state ${version} is not newer than ${existing.stateVersion}` };
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
    updatePaymentUrl: a.urls?.update_payment_method ?? existing?.updatePaymentUrl ?? null,
    customerPortalUrl: a.urls?.customer_portal ?? existing?.customerPortalUrl ?? null,
    providerUpdatedAt: a.updated_at.date,
    stateVersion: version,
    updatedAt: new Date(),
  };
  const wasPrimary = existing !== null && (await isPrimary(tx, existing));
  let sub = existing
    ? await saveSubscription(tx, existing, fields)
    : (
        await tx
          .insert(schema.subscriptions)
          .values({ ...fields, userId: user.id, providerSubscriptionId: providerId })
          .returning()
      )[0]!;

  let note: string = sub.status;
  if (hasEnded(sub)) {
    note = (await downgrade(tx, deps, sub)) ? 'downgraded' : 'already downgraded';
  } else {
    if (!existing || name === 'subscription_created') await activate(tx, deps, sub, user);
    if (existing?.downgradedPeriod != null) {
      sub = await reactivate(tx, sub);
      note = 'reactivated';
    } else if (existing && existing.tier !== sub.tier && !hasEnded(existing)) {
      await changePlan(tx, existing, sub, wasPrimary);
      note = `plan ${existing.tier} → ${sub.tier}`;
    }
    if (sub.pendingInvoiceId !== null) await applyRenewal(tx, sub, sub.pendingInvoiceId, sub.pendingInvoiceAt!);
  }
  await syncCustomer(tx, user.id);
  return { outcome: 'applied', userId: user.id, note };
}

/** A purchase that matched nobody: is this subscription one of them (its invoices wait for the link too)? */
async function unmatchedSubscriptionRecorded(tx: Tx, providerSubscriptionId: number): Promise<boolean> {
  const events = schema.webhookEvents;
  const rows = await tx
    .select({ id: events.id })
    .from(events)
    .where(
      and(
        inArray(events.eventName, [...SUBSCRIPTION_EVENTS]),
        eq(events.outcome, 'unknown_user'),
        sql`${events.payload}->'data'->>'id' = ${String(providerSubscriptionId)}`,
      ),
    )
    .limit(1);
  return rows.length > 0;
}

/**
 * Invoice events name their subscription, not the user (and no variant): the subscription row
 * supplies both. Each applies only when newer than the last invoice event applied for that
 * subscription (the invoice's own time), so the failure count and banner follow the latest
 * state, and a late or re-sent failure changes nothing.
 */
async function onInvoice(ctx: EventContext, name: string, a: InvoiceAttributes): Promise<EventOutcome> {
  const { tx, deps } = ctx;
  const invoiceId = Number(ctx.envelope.data.id);
  const found = await lockProviderSubscription(tx, a.subscription_id);
  if (name === 'subscription_payment_success' && a.billing_reason === 'initial') {
    return {
      outcome: 'ignored',
      userId: found?.userId ?? null,
      note: 'initial payment: the subscription events carry its effects',
    };
  }
  if (!found) {
    if (await unmatchedSubscriptionRecorded(tx, a.subscription_id)) return unmatched('subscription invoice');
    const named = ctx.envelope.meta.custom_data?.user_id;
    if (named !== undefined && named !== null && !(await matchUser(ctx, null)))
      return unmatched('subscription invoice');
    throw new RetryLater(`subscription ${a.subscription_id} not known yet`);
  }
  await lockCustomer(tx, found.userId);
  const user = (await findUser(tx, found.userId))!;
  const plan = PLANS[found.tier];
  const at = a.updated_at.date;
  const newer = !found.invoiceAt || at > found.invoiceAt;
  let sub: SubscriptionRow = found;
  let note: string;

  switch (name) {
    case 'subscription_payment_failed': {
      if (!newer) return { outcome: 'stale', userId: user.id, note: 'an invoice event at least as new was applied' };
      const count = sub.failedInvoiceId === invoiceId ? sub.paymentFailedCount + 1 : 1;
      await saveSubscription(tx, sub, { invoiceAt: at, failedInvoiceId: invoiceId, paymentFailedCount: count });
      await queueEmail(tx, {
        userId: user.id,
        to: user.email,
        dedupeKey: `payment_failed:ls-invoice:${invoiceId}:${a.updated_at.iso}`,
        email:
          count === 1
            ? { template: 'payment_failed_first', planName: plan.name, appUrl: appUrl(deps) }
            : { template: 'payment_failed_later', planName: plan.name, failedCount: count, appUrl: appUrl(deps) },
      });
      note = `failed payments: ${count}`;
      break;
    }
    case 'subscription_payment_refunded':
      note = await refundRenewal(tx, sub, invoiceId, a);
      break;
    default: {
      // A payment went through (a renewal, a recovery, a plan change's invoice): the failures end
      // if it is the newest invoice event; a recovery revives an unpaid subscription; a renewal's
      // period is granted once (kept while the subscription has ended).
      const clears = !found.invoiceAt || at >= found.invoiceAt;
      if (clears)
        sub = await saveSubscription(tx, sub, { invoiceAt: at, failedInvoiceId: null, paymentFailedCount: 0 });
      if (name === 'subscription_payment_recovered') {
        const wasEnded = hasEnded(sub);
        if (!sub.recoveredAt || at > sub.recoveredAt) sub = await saveSubscription(tx, sub, { recoveredAt: at });
        if (wasEnded && !hasEnded(sub) && sub.downgradedPeriod !== null) sub = await reactivate(tx, sub);
        if (clears) {
          await queueEmail(tx, {
            userId: user.id,
            to: user.email,
            dedupeKey: `payment_recovered:ls-invoice:${invoiceId}`,
            email: { template: 'payment_recovered', planName: plan.name },
          });
        }
      }
      const renewal =
        a.billing_reason === 'renewal' || (a.billing_reason === null && name === 'subscription_payment_recovered');
      if (renewal) sub = await applyRenewal(tx, sub, invoiceId, at);
      note =
        sub.pendingInvoiceId === invoiceId
          ? 'renewal kept until the subscription is active again'
          : (a.billing_reason ?? 'paid');
    }
  }
  await syncCustomer(tx, user.id);
  return { outcome: 'applied', userId: user.id, note };
}

/** The share of `whole` a refund of `refunded` out of `total` cents stands for; all of it when the amounts are unknown. */
function refundedShare(
  whole: number,
  refunded: number | null | undefined,
  total: number | null | undefined,
  fully: boolean,
): number {
  if (refunded != null && total != null && total > 0) return Math.floor((whole * Math.min(refunded, total)) / total);
  return fully ? whole : 0;
}

/** The refund target already applied under keys `<prefix><target>` (refunds grow: 1,000 then 3,000 of 7,000). */
async function refundedSoFar(tx: Tx, userId: string, prefix: string): Promise<number> {
  const t = schema.creditTransactions;
  const rows = await tx
    .select({ key: t.idempotencyKey })
    .from(t)
    .where(and(eq(t.userId, userId), eq(t.type, 'refund'), like(t.idempotencyKey, `${prefix}%`)));
  return rows.reduce((max, r) => Math.max(max, Number(r.key.slice(prefix.length)) || 0), 0);
}

/**
 * A refunded renewal takes back that period's unspent plan credits, in proportion to what
 * was refunded. A refund of an earlier period takes nothing: those credits lapsed already.
 */
async function refundRenewal(tx: Tx, sub: SubscriptionRow, invoiceId: number, a: InvoiceAttributes): Promise<string> {
  const current = sub.periodInvoiceId === invoiceId || (sub.periodInvoiceId === null && a.billing_reason === 'initial');
  if (!current) return 'refund of an earlier period: its plan credits have lapsed';
  if (!(await isPrimary(tx, sub))) return 'refund of a plan that does not decide the credits';
  const allocation = PLANS[sub.tier].monthlyCredits;
  const target = refundedShare(allocation, a.refunded_amount, a.total, true);
  const prefix = `refund:ls-invoice:${invoiceId}:to:`;
  const want = target - (await refundedSoFar(tx, sub.userId, prefix));
  if (want <= 0) return 'refund already applied';
  const entry = await revokeSubscription(tx, {
    userId: sub.userId,
    key: `${prefix}${target}`,
    amount: want,
    endsPeriod: target >= allocation,
    reference: `ls-sub:${sub.providerSubscriptionId}`,
    description: `${PLANS[sub.tier].name} period refunded`,
  });
  return `took back ${-entry.subscriptionDelta} plan credits`;
}

/**
 * Orders: a credit pack adds purchased credits once per order; a plan's first order adds
 * nothing (the subscription's activation allocates). Refunds take back the refunded share of
 * the pack (a partial refund in proportion), never more than is unspent; a refund that
 * overtakes its order is applied when the order lands.
 */
async function onOrder(ctx: EventContext, name: string, a: OrderAttributes): Promise<EventOutcome> {
  const { tx, deps } = ctx;
  const orderId = ctx.envelope.data.id;
  const product = productForVariant(deps.config, a.first_order_item.variant_id);
  const user = await matchUser(ctx, a.user_email);
  if (product?.kind !== 'credits') {
    return {
      outcome: 'ignored',
      userId: user?.id ?? null,
      note: product ? 'plan order: the subscription allocates' : `unknown variant ${a.first_order_item.variant_id}`,
    };
  }
  if (!user) return unmatched('order');
  await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`ls-order:${orderId}`}))`);
  const credits = CREDIT_PACKS[product.pack].credits;
  const purchaseKey = `purchase:ls-order:${orderId}`;
  const refundTarget = (o: OrderAttributes) =>
    refundedShare(credits, o.refunded_amount, o.total, o.refunded === true || o.status === 'refunded');

  if (name === 'order_created') {
    if (a.status !== 'paid' && a.status !== 'refunded')
      return { outcome: 'ignored', userId: user.id, note: `order ${a.status}` };
    const entry = await grant(tx, {
      userId: user.id,
      key: purchaseKey,
      type: 'purchase',
      bucket: 'purchased',
      amount: credits,
      reference: `ls-order:${orderId}`,
      description: `${credits} credit pack`,
    });
    const target = Math.max(refundTarget(a), await recordedRefundTarget(tx, orderId, refundTarget));
    const taken = await takeBackPack(tx, user.id, orderId, credits, target);
    if (!entry.replayed && target < credits) {
      await queueEmail(tx, {
        userId: user.id,
        to: user.email,
        dedupeKey: `credits_added:ls-order:${orderId}`,
        email: { template: 'credits_added', credits, appUrl: appUrl(deps) },
      });
    }
    return {
      outcome: 'applied',
      userId: user.id,
      note: `${entry.replayed ? 'already granted' : `granted ${credits}`}${taken ? `; took back ${taken}` : ''}`,
    };
  }

  const [purchase] = await tx
    .select({ id: schema.creditTransactions.id })
    .from(schema.creditTransactions)
    .where(eq(schema.creditTransactions.idempotencyKey, purchaseKey));
  if (!purchase)
    return {
      outcome: 'applied',
      userId: user.id,
      note: 'refund recorded before its purchase: applied when the order lands',
    };
  const taken = await takeBackPack(tx, user.id, orderId, credits, refundTarget(a));
  return { outcome: 'applied', userId: user.id, note: `took back ${taken} of ${credits}` };
}

async function takeBackPack(tx: Tx, userId: string, orderId: string, credits: number, target: number): Promise<number> {
  const prefix = `refund:ls-order:${orderId}:to:`;
  const want = target - (await refundedSoFar(tx, userId, prefix));
  if (want <= 0) return 0;
  const entry = await revokePurchased(tx, {
    userId,
    key: `${prefix}${target}`,
    amount: want,
    reference: `ls-order:${orderId}`,
    description: `${credits} credit pack refunded`,
  });
  return -entry.purchasedDelta;
}

/** The largest refund recorded for an order before its purchase landed. */
async function recordedRefundTarget(tx: Tx, orderId: string, target: (o: OrderAttributes) => number): Promise<number> {
  const rows = await tx
    .select({ payload: schema.webhookEvents.payload })
    .from(schema.webhookEvents)
    .where(
      and(
        eq(schema.webhookEvents.eventName, 'order_refunded'),
        sql`${schema.webhookEvents.payload}->'data'->>'id' = ${orderId}`,
      ),
    );
  return rows.reduce((max, r) => {
    const parsed = orderAttributes.safeParse((r.payload as { data?: { attributes?: unknown } }).data?.attributes);
    return parsed.success ? Math.max(max, target(parsed.data)) : max;
  }, 0);
}
