import { createHash } from 'node:crypto';
import { and, eq, sql } from 'drizzle-orm';
import { Counter } from 'prom-client';
import { schema, withSystem } from '@pingvas/db';
import type { AppDeps } from '../../deps.js';
import { isValidWebhookSignature } from './signature.js';
import { applyEvent, RetryLater, type EventOutcome } from './webhook.handlers.js';
import { classifyEvent, envelopeSchema, type KnownEvent } from './webhook.schema.js';

/**
 * Purchases that matched no user (no custom_data and no single user with the e-mail): kept
 * for support and applied when linked. Process-wide, exposed by every app's registry.
 */
export const unmatchedPurchases = new Counter({
  name: 'pingvas_payments_unmatched_total',
  help: 'Lemon Squeezy events recorded for no user (a purchase outside our checkout that matched no verified e-mail).',
  labelNames: ['event'] as const,
  registers: [],
});

export interface WebhookReply {
  status: 200 | 400 | 401 | 500 | 503;
  body: Record<string, unknown>;
}

/**
 * One Lemon Squeezy delivery, start to finish. Anything but 200 makes the provider retry, so
 * 200 means "recorded for good" (applied, a duplicate, stale, ignored or for an unknown user),
 * 500/503 mean "nothing happened, send it again", 400/401 mean "never valid".
 *
 * The delivery is recorded and applied in ONE transaction. Its dedupe key is the SHA-256 of
 * the raw body: the provider resends the same bytes, and two distinct events never share
 * them (ids and `updated_at` differ). The insert of that key is also what serialises
 * concurrent copies of one event: the second waits on the first's uncommitted row, then sees
 * a duplicate (or, if the first rolled back, applies it itself).
 */
export async function receiveLemonSqueezyWebhook(
  deps: AppDeps,
  rawBody: Buffer,
  signature: string | undefined,
): Promise<WebhookReply> {
  const secret = deps.config.LEMONSQUEEZY_WEBHOOK_SECRET;
  if (!secret) {
    deps.logger.error('lemon squeezy webhook received but LEMONSQUEEZY_WEBHOOK_SECRET is not set');
    return { status: 503, body: { error: 'webhooks are not configured' } };
  }
  if (!isValidWebhookSignature(secret, rawBody, signature)) {
    deps.logger.warn({ hasSignature: Boolean(signature) }, 'lemon squeezy webhook with a bad signature');
    return { status: 401, body: { error: 'invalid signature' } };
  }
  let json: unknown;
  try {
    json = JSON.parse(rawBody.toString('utf8'));
  } catch {
    return { status: 400, body: { error: 'body is not JSON' } };
  }
  const envelope = envelopeSchema.safeParse(json);
  if (!envelope.success)
    return {
      status: 400,
      body: {
        error: 'not a Lemon Squeezy event',
        issues: envelope.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
      },
    };
  const classified = classifyEvent(envelope.data);
  if (!classified.ok) {
    deps.logger.warn(
      { event: envelope.data.meta.event_name, message: classified.message },
      'malformed lemon squeezy event',
    );
    return { status: 400, body: { error: 'malformed event', message: classified.message } };
  }

  const eventName = envelope.data.meta.event_name;
  const dedupeKey = createHash('sha256').update(rawBody).digest('hex');
  const log = deps.logger.child({
    webhook: 'lemonsqueezy',
    event: eventName,
    dataId: envelope.data.data.id,
    dedupeKey,
  });
  const refusedTestMode =
    envelope.data.meta.test_mode && !deps.config.development && !deps.config.LEMONSQUEEZY_ACCEPT_TEST_MODE;
  try {
    const result = await withSystem(deps.db, async (tx) => {
      const [recorded] = await tx
        .insert(schema.webhookEvents)
        .values({ provider: 'lemonsqueezy', eventName, dedupeKey, payload: json, outcome: 'ignored' })
        .onConflictDoNothing({ target: schema.webhookEvents.dedupeKey })
        .returning({ id: schema.webhookEvents.id });
      if (!recorded) return { duplicate: true as const };
      const outcome: EventOutcome = refusedTestMode
        ? {
            outcome: 'ignored',
            userId: null,
            note: 'test mode event: refused in production (LEMONSQUEEZY_ACCEPT_TEST_MODE)',
          }
        : await applyEvent({ tx, deps, envelope: envelope.data }, classified.event);
      await tx
        .update(schema.webhookEvents)
        .set({ outcome: outcome.outcome, userId: outcome.userId, note: outcome.note ?? null })
        .where(eq(schema.webhookEvents.id, recorded.id));
      return { duplicate: false as const, ...outcome };
    });
    if (result.duplicate) {
      log.info('duplicate delivery; already recorded');
      return { status: 200, body: { ok: true, duplicate: true } };
    }
    if (result.outcome === 'unknown_user') {
      unmatchedPurchases.inc({ event: eventName });
      log.warn({ note: result.note }, 'lemon squeezy purchase matched no user; kept for support, applied when linked');
    } else {
      log.info({ outcome: result.outcome, userId: result.userId, note: result.note }, 'lemon squeezy event recorded');
    }
    return { status: 200, body: { ok: true, outcome: result.outcome } };
  } catch (err) {
    if (err instanceof RetryLater) {
      log.info({ reason: err.message }, 'event cannot apply yet; asking the provider to retry');
      return { status: 503, body: { error: 'retry later', reason: err.message } };
    }
    log.error({ err }, 'applying a lemon squeezy event failed; rolled back for the provider to retry');
    return { status: 500, body: { error: 'could not apply the event; it was not recorded' } };
  }
}

/** Orders provider events as the provider made them: by their object's `updated_at`, subscriptions before their invoices. */
function providerOrder(payload: unknown): string {
  const attributes = (payload as { data?: { type?: string; attributes?: { updated_at?: string } } }).data;
  return `${attributes?.attributes?.updated_at ?? ''}|${attributes?.type === 'subscriptions' ? 0 : 1}`;
}

/**
 * Applies the purchases recorded for nobody whose e-mail is this user's (a checkout outside
 * ours, before the customer signed up), in the order the provider made them. Each event is
 * applied in its own transaction as if delivered now for this user, and marked applied.
 */
export async function linkUnmatchedPurchases(deps: AppDeps, userId: string): Promise<number> {
  const pending = await withSystem(deps.db, async (tx) => {
    const [user] = await tx.select({ email: schema.users.email }).from(schema.users).where(eq(schema.users.id, userId));
    if (!user) return [];
    return tx
      .select()
      .from(schema.webhookEvents)
      .where(
        and(
          eq(schema.webhookEvents.outcome, 'unknown_user'),
          sql`lower(${schema.webhookEvents.payload}->'data'->'attributes'->>'user_email') = lower(${user.email})`,
          sql`(${schema.webhookEvents.payload}->'meta'->'custom_data'->'user_id') is null`,
        ),
      );
  });
  pending.sort((a, b) => providerOrder(a.payload).localeCompare(providerOrder(b.payload)));
  let linked = 0;
  for (const recorded of pending) {
    const envelope = envelopeSchema.safeParse(recorded.payload);
    if (!envelope.success) continue;
    const classified = classifyEvent(envelope.data);
    if (!classified.ok) continue;
    const applied = await withSystem(deps.db, async (tx) => {
      const [still] = await tx
        .select({ outcome: schema.webhookEvents.outcome })
        .from(schema.webhookEvents)
        .where(eq(schema.webhookEvents.id, recorded.id))
        .for('update');
      if (still?.outcome !== 'unknown_user') return false;
      const outcome = await applyEvent(
        { tx, deps, envelope: envelope.data, linkedUserId: userId },
        classified.event as KnownEvent,
      );
      await tx
        .update(schema.webhookEvents)
        .set({ outcome: outcome.outcome, userId, note: `linked: ${outcome.note ?? ''}` })
        .where(eq(schema.webhookEvents.id, recorded.id));
      return true;
    });
    if (applied) linked += 1;
  }
  if (linked) deps.logger.info({ userId, linked }, 'linked lemon squeezy purchases recorded for nobody');
  return linked;
}
