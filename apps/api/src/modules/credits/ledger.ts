import { randomUUID } from 'node:crypto';
import type postgres from 'postgres';
import { sqlOf, type schema, type Tx } from '@pingvas/db';
import { DomainError, paymentRequired, type CreditBucket } from '@pingvas/core';
import { countedLedgerOperation } from '../metrics/metrics.js';

/**
 * The credit ledger. Every function runs inside the caller's transaction (so a job insert
 * and its hold commit together), locks the user's balance row first, and writes exactly one
 * credit_transactions row per change. Each operation is idempotent by its key: a replay
 * returns the first result and applies nothing.
 *
 * It is the hottest write path of the product (every job holds and captures), so it speaks
 * to PostgreSQL through the transaction's own postgres.js handle rather than drizzle's query
 * builder, whose per-query SQL building cost about three times the rest of the work
 * (`npm run bench:ledger`). Statements are prepared (postgres.js keeps them per connection)
 * and the statements of one step are pipelined: sent together, one round trip. Pipelining
 * the idempotency lookup behind the row lock is safe because PostgreSQL runs a connection's
 * statements in order and, in READ COMMITTED, the lookup takes its snapshot only once the
 * lock is held, so it sees every operation that held the lock before us.
 */

export interface Balance {
  subscription: number;
  purchased: number;
  held: number;
  /** What the user can spend now: subscription + purchased. */
  available: number;
}

export type LedgerEntry = typeof schema.creditTransactions.$inferSelect & { replayed: boolean };
export type GrantType = 'monthly_allocation' | 'purchase' | 'adjustment';
export type SubscriptionCreditsType = 'monthly_allocation' | 'downgrade';
export type Hold = typeof schema.creditHolds.$inferSelect;
type EntryType = (typeof schema.CREDIT_TRANSACTION_TYPES)[number];
type Sql = postgres.TransactionSql;

const ENTRY_COLUMNS = `id, user_id as "userId", type, idempotency_key as "idempotencyKey",
  subscription_delta as "subscriptionDelta", purchased_delta as "purchasedDelta", held_delta as "heldDelta",
  balance_after as "balanceAfter", hold_id as "holdId", reference, description, created_at as "createdAt"`;
const HOLD_COLUMNS = `id, user_id as "userId", idempotency_key as "idempotencyKey", reference, status,
  subscription_amount as "subscriptionAmount", purchased_amount as "purchasedAmount",
  captured_amount as "capturedAmount", subscription_period as "subscriptionPeriod",
  created_at as "createdAt", closed_at as "closedAt"`;

/**
 * Rows as this connection returns them: drizzle sets the client to hand timestamps over
 * as text (it parses them itself), so the ledger parses them the same way drizzle does.
 */
type EntryRow = Omit<LedgerEntry, 'replayed' | 'createdAt'> & { createdAt: string };
type HoldRow = Omit<Hold, 'createdAt' | 'closedAt'> & { createdAt: string; closedAt: string | null };

const toEntry = (row: EntryRow, replayed: boolean): LedgerEntry => ({
  ...row,
  createdAt: new Date(row.createdAt),
  replayed,
});
const toHold = (row: HoldRow): Hold => ({
  ...row,
  createdAt: new Date(row.createdAt),
  closedAt: row.closedAt === null ? null : new Date(row.closedAt),
});

interface BalanceRow {
  subscription: number;
  purchased: number;
  held: number;
  /** The current subscription period (moves on at each reset). */
  period: number;
  /** Refunded purchased credits still owed by what running jobs return. */
  debt: number;
}

function noBalance(): DomainError<'NOT_FOUND'> {
  return new DomainError('NOT_FOUND', 'This account has no credit balance.', { entity: 'credit balance' });
}

function holdNotFound(): DomainError<'NOT_FOUND'> {
  return new DomainError('NOT_FOUND', 'Credit hold not found.', { entity: 'credit hold' });
}

function toBalance(row: BalanceRow): Balance {
  const { subscription, purchased, held } = row;
  return { subscription, purchased, held, available: subscription + purchased };
}

const selectBalance = (q: Sql, userId: string, lock: boolean) =>
  lock
    ? q<BalanceRow[]>`select subscription_credits as subscription, purchased_credits as purchased, held_credits as held,
        subscription_period as period, purchased_debt as debt
      from credit_balances where user_id = ${userId} for update`
    : q<BalanceRow[]>`select subscription_credits as subscription, purchased_credits as purchased, held_credits as held,
        subscription_period as period, purchased_debt as debt
      from credit_balances where user_id = ${userId}`;

const selectEntry = (q: Sql, key: string) =>
  q<EntryRow[]>`select ${q.unsafe(ENTRY_COLUMNS)} from credit_transactions where idempotency_key = ${key}`;

/**
 * A key is global, so a replay must be the same user's operation of the same kind;
 * anything else is a caller bug that must not be answered with someone else's entry.
 */
function checkReplay(found: EntryRow | undefined, userId: string, kinds: readonly EntryType[]): LedgerEntry | null {
  if (!found) return null;
  if (found.userId !== userId || !kinds.includes(found.type)) {
    throw new DomainError('CONFLICT', 'This idempotency key was already used for another operation.', {
      key: found.idempotencyKey,
    });
  }
  return toEntry(found, true);
}

/** Locks the balance row and, behind the lock, looks the key up (one round trip). */
async function lockAndFind(
  q: Sql,
  userId: string,
  key: string,
  kinds: readonly EntryType[],
): Promise<{ before: Balance; row: BalanceRow; replay: LedgerEntry | null }> {
  const [[row], [found]] = await Promise.all([selectBalance(q, userId, true), selectEntry(q, key)]);
  if (!row) throw noBalance();
  return { before: toBalance(row), row, replay: checkReplay(found, userId, kinds) };
}

/** A change of the spendable buckets (grants, resets, revocations); holds have their own statements. */
interface Movement {
  userId: string;
  key: string;
  type: EntryType;
  subscriptionDelta?: number;
  purchasedDelta?: number;
  reference?: string | null;
  description?: string | null;
  /** Starts a new subscription period: plan credits held by open jobs lapse when they come back. */
  newPeriod?: boolean;
  debtDelta?: number;
}

/** Moves the balance row and records the movement (one round trip); the caller holds the row lock. */
async function applyMovement(q: Sql, before: Balance, m: Movement): Promise<LedgerEntry> {
  const subscriptionDelta = m.subscriptionDelta ?? 0;
  const purchasedDelta = m.purchasedDelta ?? 0;
  const [, [entry]] = await Promise.all([
    q`update credit_balances
      set subscription_credits = subscription_credits + ${subscriptionDelta}, purchased_credits = purchased_credits + ${purchasedDelta},
          subscription_period = subscription_period + ${m.newPeriod ? 1 : 0},
          purchased_debt = purchased_debt + ${m.debtDelta ?? 0},
          updated_at = now()
      where user_id = ${m.userId}`,
    q<EntryRow[]>`insert into credit_transactions
        (user_id, type, idempotency_key, subscription_delta, purchased_delta, balance_after, reference, description)
      values (${m.userId}, ${m.type}, ${m.key}, ${subscriptionDelta}, ${purchasedDelta},
              ${before.available + subscriptionDelta + purchasedDelta}, ${m.reference ?? null}, ${m.description ?? null})
      returning ${q.unsafe(ENTRY_COLUMNS)}`,
  ]);
  return toEntry(entry!, false);
}

export async function getBalance(tx: Tx, userId: string): Promise<Balance> {
  const [row] = await selectBalance(sqlOf(tx), userId, false);
  if (!row) throw noBalance();
  return toBalance(row);
}

/** Adds credits to one bucket (allocation top-up, pack purchase, support adjustment). */
async function grantOp(
  tx: Tx,
  input: {
    userId: string;
    key: string;
    type: GrantType;
    bucket: CreditBucket;
    amount: number;
    reference?: string;
    description?: string;
  },
): Promise<LedgerEntry> {
  if (!Number.isInteger(input.amount) || input.amount <= 0)
    throw new RangeError('grant amount must be a positive integer');
  const q = sqlOf(tx);
  const { before, replay } = await lockAndFind(q, input.userId, input.key, [input.type]);
  if (replay) return replay;
  return applyMovement(q, before, {
    ...input,
    subscriptionDelta: input.bucket === 'subscription' ? input.amount : 0,
    purchasedDelta: input.bucket === 'purchased' ? input.amount : 0,
  });
}

/**
 * Sets the subscription bucket to `amount` (a new paid period's allocation, or 0 when the
 * plan ends) and starts a new subscription period: subscription credits never roll over.
 * Credits held by open jobs are not in the bucket; what such a job does not use lapses
 * instead of landing in the new period (see closeHold).
 */
async function setSubscriptionCreditsOp(
  tx: Tx,
  input: {
    userId: string;
    key: string;
    type: SubscriptionCreditsType;
    amount: number;
    reference?: string;
    description?: string;
  },
): Promise<LedgerEntry> {
  if (!Number.isInteger(input.amount) || input.amount < 0)
    throw new RangeError('subscription credits must be a non-negative integer');
  const q = sqlOf(tx);
  const { before, replay } = await lockAndFind(q, input.userId, input.key, [input.type]);
  if (replay) return replay;
  return applyMovement(q, before, { ...input, subscriptionDelta: input.amount - before.subscription, newPeriod: true });
}

/**
 * Takes back up to `amount` plan credits (a refunded renewal), never below zero. A whole
 * period refunded also starts a new period, so what running jobs hold of it lapses too.
 */
async function revokeSubscriptionOp(
  tx: Tx,
  input: { userId: string; key: string; amount: number; endsPeriod: boolean; reference?: string; description?: string },
): Promise<LedgerEntry> {
  if (!Number.isInteger(input.amount) || input.amount < 0) {
    throw new RangeError('revoke amount must be a non-negative integer');
  }
  const q = sqlOf(tx);
  const { before, replay } = await lockAndFind(q, input.userId, input.key, ['refund']);
  if (replay) return replay;
  return applyMovement(q, before, {
    ...input,
    type: 'refund',
    subscriptionDelta: -Math.min(input.amount, before.subscription),
    newPeriod: input.endsPeriod,
  });
}

/** Plan credits of the current period that open jobs hold (they come back to this period). */
async function heldFromThisPeriod(q: Sql, userId: string, period: number): Promise<number> {
  const [row] = await q<{ held: number }[]>`
    select coalesce(sum(subscription_amount), 0)::int as held from credit_holds
    where user_id = ${userId} and status = 'open' and subscription_period = ${period}`;
  return row!.held;
}

/**
 * A plan change inside a period. What is left of this period's plan credits (the bucket plus
 * what open jobs hold from it) rises by the difference of the allocations on an upgrade and
 * never passes the new allocation; on a downgrade it is capped at the new allocation. The
 * held part stays with its jobs, so only the bucket moves (never below zero).
 */
async function changePlanCreditsOp(
  tx: Tx,
  input: { userId: string; key: string; from: number; to: number; reference?: string; description?: string },
): Promise<LedgerEntry> {
  if (![input.from, input.to].every((n) => Number.isInteger(n) && n >= 0)) {
    throw new RangeError('allocations must be non-negative integers');
  }
  const q = sqlOf(tx);
  const { before, row, replay } = await lockAndFind(q, input.userId, input.key, ['plan_change']);
  if (replay) return replay;
  const held = await heldFromThisPeriod(q, input.userId, row.period);
  const left = before.subscription + held;
  const target = input.to > input.from ? Math.min(left + input.to - input.from, input.to) : Math.min(left, input.to);
  const bucket = Math.max(0, target - held);
  return applyMovement(q, before, { ...input, type: 'plan_change', subscriptionDelta: bucket - before.subscription });
}

/** Purchased credits open holds could still return. */
async function heldPurchased(q: Sql, userId: string): Promise<number> {
  const [row] = await q<{ held: number }[]>`
    select coalesce(sum(purchased_amount), 0)::int as held from credit_holds where user_id = ${userId} and status = 'open'`;
  return row!.held;
}

/**
 * Takes back up to `amount` purchased credits (a refunded pack): what is in the bucket now,
 * and what running jobs hold of purchased credits as a debt those jobs' returns pay off —
 * never more, so spent credits are never taken twice and nothing goes below zero.
 */
async function revokePurchasedOp(
  tx: Tx,
  input: { userId: string; key: string; amount: number; reference?: string; description?: string },
): Promise<LedgerEntry> {
  if (!Number.isInteger(input.amount) || input.amount <= 0)
    throw new RangeError('revoke amount must be a positive integer');
  const q = sqlOf(tx);
  const { before, row, replay } = await lockAndFind(q, input.userId, input.key, ['refund']);
  if (replay) return replay;
  const now = Math.min(input.amount, before.purchased);
  let debtDelta = 0;
  if (input.amount > now) {
    debtDelta = Math.max(0, Math.min(row.debt + input.amount - now, await heldPurchased(q, input.userId)) - row.debt);
  }
  return applyMovement(q, before, { ...input, type: 'refund', purchasedDelta: -now, debtDelta });
}

/**
 * After a hold closed: plan credits it returns into a later period lapse (that period has
 * its own allocation), and purchased credits it returns pay off a refund's debt first. The
 * debt never outlives the holds that could pay it (credits a job spent are not taken twice).
 * One more entry, in the rare case there is anything to do.
 */
async function settleReturn(q: Sql, row: BalanceRow, held: Hold, charged: number): Promise<void> {
  const chargedFromPlan = Math.min(charged, held.subscriptionAmount);
  const planBack = held.subscriptionAmount - chargedFromPlan;
  const purchasedBack = held.purchasedAmount - (charged - chargedFromPlan);
  const lapse = held.subscriptionPeriod !== row.period ? planBack : 0;
  if (lapse === 0 && row.debt === 0) return;
  const after = await selectBalance(q, held.userId, true);
  const before = toBalance(after[0]!);
  if (lapse > 0) {
    await applyMovement(q, before, {
      userId: held.userId,
      key: `expiry:${held.id}`,
      type: 'expiry',
      subscriptionDelta: -lapse,
      reference: held.reference,
      description: `${lapse} plan credits of an earlier period came back from a job`,
    });
  }
  if (row.debt > 0) {
    const pay = Math.min(row.debt, purchasedBack);
    const debtDelta = Math.min(row.debt - pay, await heldPurchased(q, held.userId)) - row.debt;
    await applyMovement(
      q,
      { ...before, purchased: before.purchased, available: before.available - lapse },
      {
        userId: held.userId,
        key: `refund-debt:${held.id}`,
        type: 'refund',
        purchasedDelta: -pay,
        debtDelta,
        reference: held.reference,
        description: pay > 0 ? `${pay} refunded credits a job held` : 'refund debt settled',
      },
    );
  }
}

/**
 * Reserves `amount` credits, subscription credits first. Not enough → PAYMENT_REQUIRED with
 * the balance and what was needed, and nothing written. A replay returns the first hold,
 * whatever has happened to it since.
 *
 * One round trip: the lock, the key lookup and a write that applies only if the key is new
 * and the balance covers the amount (it runs after the lock, so it judges the same fresh
 * row the lookup does). Which of the three outcomes happened is read from the answers.
 * The split is core's splitSpend rule, in SQL: least(subscription, amount) from subscription.
 */
async function holdOp(
  tx: Tx,
  input: { userId: string; key: string; amount: number; reference?: string },
): Promise<{ hold: Hold; entry: LedgerEntry }> {
  if (!Number.isInteger(input.amount) || input.amount <= 0)
    throw new RangeError('hold amount must be a positive integer');
  const q = sqlOf(tx);
  const holdId = randomUUID();
  const { userId, key, amount } = input;
  const reference = input.reference ?? null;
  const [[row], [found], [entry]] = await Promise.all([
    selectBalance(q, userId, true),
    selectEntry(q, key),
    q<EntryRow[]>`
      with cur as (
        select subscription_credits as s, purchased_credits as p, least(subscription_credits, ${amount}::int) as take_s,
               subscription_period as period
        from credit_balances
        where user_id = ${userId}::uuid and subscription_credits + purchased_credits >= ${amount}::int
          and not exists (select 1 from credit_transactions where idempotency_key = ${key}::text)
      ), bal as (
        update credit_balances b
        set subscription_credits = cur.s - cur.take_s, purchased_credits = cur.p - (${amount}::int - cur.take_s),
            held_credits = b.held_credits + ${amount}::int, updated_at = now()
        from cur where b.user_id = ${userId}::uuid
        returning b.subscription_credits + b.purchased_credits as available
      ), held as (
        insert into credit_holds (id, user_id, idempotency_key, reference, subscription_amount, purchased_amount, subscription_period)
        select ${holdId}::uuid, ${userId}::uuid, ${key}::text, ${reference}::text, cur.take_s, ${amount}::int - cur.take_s, cur.period
        from cur, bal
      )
      insert into credit_transactions (user_id, type, idempotency_key, subscription_delta, purchased_delta, held_delta, balance_after, hold_id, reference)
      select ${userId}::uuid, 'hold', ${key}::text, -cur.take_s, -(${amount}::int - cur.take_s), ${amount}::int, bal.available, ${holdId}::uuid, ${reference}::text
      from cur, bal
      returning ${q.unsafe(ENTRY_COLUMNS)}`,
  ]);
  if (!row) throw noBalance();
  const replay = checkReplay(found, userId, ['hold']);
  if (replay) {
    const [existing] = await q<
      HoldRow[]
    >`select ${q.unsafe(HOLD_COLUMNS)} from credit_holds where id = ${replay.holdId!}`;
    return { hold: toHold(existing!), entry: replay };
  }
  const before = toBalance(row);
  if (!entry) {
    if (before.available < amount) throw paymentRequired(before.available, amount);
    throw new Error(`ledger: the hold ${key} was neither written nor refused`);
  }
  const written: Hold = {
    id: holdId,
    userId,
    idempotencyKey: key,
    reference,
    status: 'open',
    subscriptionAmount: Math.abs(entry.subscriptionDelta),
    purchasedAmount: Math.abs(entry.purchasedDelta),
    capturedAmount: null,
    subscriptionPeriod: row.period,
    createdAt: new Date(entry.createdAt),
    closedAt: null,
  };
  return { hold: written, entry: toEntry(entry, false) };
}

/**
 * Closes a hold in one round trip: locks the balance, and behind the lock looks up the
 * operation's key, locks the hold, and writes the closing (hold status, balance, entry)
 * only if the key is new, the hold is this user's and open, and `amount` fits in it. The
 * answers then say which case it was. The hold must be this user's: the balance lock is
 * what serialises operations on it.
 */
async function closeHold(
  tx: Tx,
  input: { userId: string; holdId: string; amount: number },
  kind: 'capture' | 'release',
): Promise<{ replay: LedgerEntry | null; held: Hold; entry: LedgerEntry | null }> {
  const q = sqlOf(tx);
  const { userId, holdId, amount } = input;
  const key = `${kind}:${holdId}`;
  const status = kind === 'capture' ? 'captured' : 'released';
  const [[row], [found], [held], [entry]] = await Promise.all([
    selectBalance(q, userId, true),
    selectEntry(q, key),
    q<HoldRow[]>`select ${q.unsafe(HOLD_COLUMNS)} from credit_holds where id = ${holdId} for update`,
    q<EntryRow[]>`
      with hd as (
        select id, subscription_amount as s, purchased_amount as p, least(${amount}::int, subscription_amount) as charge_s, reference
        from credit_holds
        where id = ${holdId}::uuid and user_id = ${userId}::uuid and status = 'open'
          and subscription_amount + purchased_amount >= ${amount}::int
          and not exists (select 1 from credit_transactions where idempotency_key = ${key}::text)
      ), bal as (
        update credit_balances b
        set subscription_credits = b.subscription_credits + (hd.s - hd.charge_s),
            purchased_credits = b.purchased_credits + (hd.p - (${amount}::int - hd.charge_s)),
            held_credits = b.held_credits - (hd.s + hd.p), updated_at = now()
        from hd where b.user_id = ${userId}::uuid
        returning b.subscription_credits + b.purchased_credits as available
      ), closed as (
        update credit_holds h set status = ${status}::text, captured_amount = ${amount}::int, closed_at = now()
        from hd, bal where h.id = hd.id
      )
      insert into credit_transactions
        (user_id, type, idempotency_key, subscription_delta, purchased_delta, held_delta, balance_after, hold_id, reference, description)
      select ${userId}::uuid, ${kind}::text, ${key}::text, hd.s - hd.charge_s, hd.p - (${amount}::int - hd.charge_s), -(hd.s + hd.p),
             bal.available, hd.id, hd.reference,
             case when ${kind}::text = 'capture' then 'charged ' || ${amount}::int || ' of ' || (hd.s + hd.p) || ' held' end
      from hd, bal
      returning ${q.unsafe(ENTRY_COLUMNS)}`,
  ]);
  if (!row) throw noBalance();
  const replay = checkReplay(found, userId, [kind]);
  if (!replay && (!held || held.userId !== userId)) throw holdNotFound();
  const closed = toHold(held!);
  if (entry) await settleReturn(q, row, closed, amount);
  return { replay, held: closed, entry: entry ? toEntry(entry, false) : null };
}

/**
 * Charges `amount` (≤ the hold) and returns the rest. The charge comes out of the
 * subscription part first, so the refund goes back to purchased credits first.
 * A replay returns the first capture; capturing a released hold is a CONFLICT.
 */
async function captureOp(tx: Tx, input: { userId: string; holdId: string; amount: number }): Promise<LedgerEntry> {
  if (!Number.isInteger(input.amount) || input.amount < 0) {
    throw new RangeError(`capture amount must be a non-negative integer, got ${input.amount}`);
  }
  const { replay, held, entry } = await closeHold(tx, input, 'capture');
  if (replay) return replay;
  if (held.status !== 'open')
    throw new DomainError('CONFLICT', `This hold was already ${held.status}.`, { holdStatus: held.status });
  const total = held.subscriptionAmount + held.purchasedAmount;
  if (input.amount > total)
    throw new RangeError(`capture amount must be an integer between 0 and the hold (${total}), got ${input.amount}`);
  if (!entry) throw new Error(`ledger: the capture of hold ${held.id} was neither written nor refused`);
  return entry;
}

/** Returns the whole hold to the buckets it came from. A replay, or a release after a capture, changes nothing. */
async function releaseOp(tx: Tx, input: { userId: string; holdId: string }): Promise<LedgerEntry | null> {
  const { replay, held, entry } = await closeHold(tx, { ...input, amount: 0 }, 'release');
  if (replay) return replay;
  if (held.status !== 'open') return null;
  if (!entry) throw new Error(`ledger: the release of hold ${held.id} was neither written nor refused`);
  return entry;
}

/** The operations as callers use them, each counted by outcome for /metrics (pingvas_ledger_operations_total). */
export const grant = countedLedgerOperation('grant', grantOp);
export const setSubscriptionCredits = countedLedgerOperation('set_subscription_credits', setSubscriptionCreditsOp);
export const revokePurchased = countedLedgerOperation('revoke_purchased', revokePurchasedOp);
export const revokeSubscription = countedLedgerOperation('set_subscription_credits', revokeSubscriptionOp);
/** Counted with the other writes of the subscription bucket. */
export const changePlanCredits = countedLedgerOperation('set_subscription_credits', changePlanCreditsOp);
export const hold = countedLedgerOperation('hold', holdOp);
export const capture = countedLedgerOperation('capture', captureOp);
export const release = countedLedgerOperation('release', releaseOp);
