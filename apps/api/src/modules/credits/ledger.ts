import { and, eq, sql } from 'drizzle-orm';
import { schema, type Tx } from '@pingvas/db';
import { DomainError, paymentRequired, splitSpend, type CreditBucket } from '@pingvas/core';

const { creditBalances, creditTransactions, creditHolds } = schema;

/**
 * The credit ledger. Every function runs inside the caller's transaction (so a job insert
 * and its hold commit together), locks the user's balance row first, and writes exactly one
 * credit_transactions row per change. Each operation is idempotent by its key: a replay
 * returns the first result and applies nothing.
 */

export interface Balance {
  subscription: number;
  purchased: number;
  held: number;
  /** What the user can spend now: subscription + purchased. */
  available: number;
}

export type LedgerEntry = typeof creditTransactions.$inferSelect & { replayed: boolean };
export type GrantType = 'monthly_allocation' | 'purchase' | 'adjustment';

async function lockBalance(tx: Tx, userId: string): Promise<Balance> {
  const [row] = await tx
    .select()
    .from(creditBalances)
    .where(eq(creditBalances.userId, userId))
    .for('update');
  if (!row) throw new DomainError('NOT_FOUND', 'This account has no credit balance.', { entity: 'credit balance' });
  return toBalance(row);
}

function toBalance(row: { subscriptionCredits: number; purchasedCredits: number; heldCredits: number }): Balance {
  return {
    subscription: row.subscriptionCredits,
    purchased: row.purchasedCredits,
    held: row.heldCredits,
    available: row.subscriptionCredits + row.purchasedCredits,
  };
}

async function findEntry(tx: Tx, key: string): Promise<LedgerEntry | null> {
  const [row] = await tx.select().from(creditTransactions).where(eq(creditTransactions.idempotencyKey, key));
  return row ? { ...row, replayed: true } : null;
}

interface Movement {
  userId: string;
  key: string;
  type: (typeof schema.CREDIT_TRANSACTION_TYPES)[number];
  subscriptionDelta?: number;
  purchasedDelta?: number;
  heldDelta?: number;
  holdId?: string | null;
  reference?: string | null;
  description?: string | null;
}

/** Moves the balance row and records the movement; the caller holds the row lock. */
async function applyMovement(tx: Tx, before: Balance, m: Movement): Promise<LedgerEntry> {
  const subscriptionDelta = m.subscriptionDelta ?? 0;
  const purchasedDelta = m.purchasedDelta ?? 0;
  const heldDelta = m.heldDelta ?? 0;
  await tx
    .update(creditBalances)
    .set({
      subscriptionCredits: sql`${creditBalances.subscriptionCredits} + ${subscriptionDelta}`,
      purchasedCredits: sql`${creditBalances.purchasedCredits} + ${purchasedDelta}`,
      heldCredits: sql`${creditBalances.heldCredits} + ${heldDelta}`,
      updatedAt: sql`now()`,
    })
    .where(eq(creditBalances.userId, m.userId));
  const [entry] = await tx
    .insert(creditTransactions)
    .values({
      userId: m.userId,
      type: m.type,
      idempotencyKey: m.key,
      subscriptionDelta,
      purchasedDelta,
      heldDelta,
      balanceAfter: before.available + subscriptionDelta + purchasedDelta,
      holdId: m.holdId ?? null,
      reference: m.reference ?? null,
      description: m.description ?? null,
    })
    .returning();
  return { ...entry!, replayed: false };
}

export async function getBalance(tx: Tx, userId: string): Promise<Balance> {
  const [row] = await tx.select().from(creditBalances).where(eq(creditBalances.userId, userId));
  if (!row) throw new DomainError('NOT_FOUND', 'This account has no credit balance.', { entity: 'credit balance' });
  return toBalance(row);
}

/** Adds credits to one bucket (allocation top-up, pack purchase, support adjustment). */
export async function grant(
  tx: Tx,
  input: { userId: string; key: string; type: GrantType; bucket: CreditBucket; amount: number; reference?: string; description?: string },
): Promise<LedgerEntry> {
  if (!Number.isInteger(input.amount) || input.amount <= 0) throw new RangeError('grant amount must be a positive integer');
  const before = await lockBalance(tx, input.userId);
  const replay = await findEntry(tx, input.key);
  if (replay) return replay;
  return applyMovement(tx, before, {
    ...input,
    subscriptionDelta: input.bucket === 'subscription' ? input.amount : 0,
    purchasedDelta: input.bucket === 'purchased' ? input.amount : 0,
  });
}

/**
 * Sets the subscription bucket to `amount` (a new paid period's allocation, or 0 on
 * downgrade): subscription credits never roll over.
 */
export async function setSubscriptionCredits(
  tx: Tx,
  input: { userId: string; key: string; type: 'monthly_allocation' | 'downgrade'; amount: number; reference?: string; description?: string },
): Promise<LedgerEntry> {
  if (!Number.isInteger(input.amount) || input.amount < 0) throw new RangeError('subscription credits must be a non-negative integer');
  const before = await lockBalance(tx, input.userId);
  const replay = await findEntry(tx, input.key);
  if (replay) return replay;
  return applyMovement(tx, before, { ...input, subscriptionDelta: input.amount - before.subscription });
}

/** Takes back up to `amount` purchased credits (a refunded pack), never below zero. */
export async function revokePurchased(
  tx: Tx,
  input: { userId: string; key: string; amount: number; reference?: string; description?: string },
): Promise<LedgerEntry> {
  if (!Number.isInteger(input.amount) || input.amount <= 0) throw new RangeError('revoke amount must be a positive integer');
  const before = await lockBalance(tx, input.userId);
  const replay = await findEntry(tx, input.key);
  if (replay) return replay;
  return applyMovement(tx, before, { ...input, type: 'refund', purchasedDelta: -Math.min(input.amount, before.purchased) });
}

export type Hold = typeof creditHolds.$inferSelect;

/**
 * Reserves `amount` credits, subscription credits first. Not enough → PAYMENT_REQUIRED with
 * the balance and what was needed, and nothing written.
 */
export async function hold(
  tx: Tx,
  input: { userId: string; key: string; amount: number; reference?: string },
): Promise<{ hold: Hold; entry: LedgerEntry }> {
  if (!Number.isInteger(input.amount) || input.amount <= 0) throw new RangeError('hold amount must be a positive integer');
  const before = await lockBalance(tx, input.userId);
  const replay = await findEntry(tx, input.key);
  if (replay) {
    const [existing] = await tx.select().from(creditHolds).where(eq(creditHolds.id, replay.holdId!));
    return { hold: existing!, entry: replay };
  }
  if (before.available < input.amount) throw paymentRequired(before.available, input.amount);
  const split = splitSpend(before, input.amount);
  const [created] = await tx
    .insert(creditHolds)
    .values({
      userId: input.userId,
      idempotencyKey: input.key,
      reference: input.reference ?? null,
      subscriptionAmount: split.subscription,
      purchasedAmount: split.purchased,
    })
    .returning();
  const entry = await applyMovement(tx, before, {
    userId: input.userId,
    key: input.key,
    type: 'hold',
    subscriptionDelta: -split.subscription,
    purchasedDelta: -split.purchased,
    heldDelta: input.amount,
    holdId: created!.id,
    reference: input.reference,
  });
  return { hold: created!, entry };
}

async function lockHold(tx: Tx, holdId: string): Promise<Hold> {
  const [row] = await tx.select().from(creditHolds).where(eq(creditHolds.id, holdId));
  if (!row) throw new DomainError('NOT_FOUND', 'Credit hold not found.', { entity: 'credit hold' });
  return row;
}

/**
 * Charges `amount` (≤ the hold) and returns the rest. The charge comes out of the
 * subscription part first, so the refund goes back to purchased credits first.
 * A replay returns the first capture; capturing a released hold is a CONFLICT.
 */
export async function capture(tx: Tx, input: { userId: string; holdId: string; amount: number }): Promise<LedgerEntry> {
  const key = `capture:${input.holdId}`;
  const before = await lockBalance(tx, input.userId);
  const replay = await findEntry(tx, key);
  if (replay) return replay;
  const held = await lockHold(tx, input.holdId);
  const total = held.subscriptionAmount + held.purchasedAmount;
  if (held.status !== 'open') throw new DomainError('CONFLICT', `This hold was already ${held.status}.`, { holdStatus: held.status });
  if (!Number.isInteger(input.amount) || input.amount < 0 || input.amount > total) {
    throw new RangeError(`capture amount must be an integer between 0 and the hold (${total}), got ${input.amount}`);
  }
  const chargedSubscription = Math.min(input.amount, held.subscriptionAmount);
  const chargedPurchased = input.amount - chargedSubscription;
  await tx
    .update(creditHolds)
    .set({ status: 'captured', capturedAmount: input.amount, closedAt: sql`now()` })
    .where(and(eq(creditHolds.id, held.id), eq(creditHolds.status, 'open')));
  return applyMovement(tx, before, {
    userId: input.userId,
    key,
    type: 'capture',
    heldDelta: -total,
    subscriptionDelta: held.subscriptionAmount - chargedSubscription,
    purchasedDelta: held.purchasedAmount - chargedPurchased,
    holdId: held.id,
    reference: held.reference,
    description: `charged ${input.amount} of ${total} held`,
  });
}

/** Returns the whole hold to the buckets it came from. A replay, or a release after a capture, changes nothing. */
export async function release(tx: Tx, input: { userId: string; holdId: string }): Promise<LedgerEntry | null> {
  const key = `release:${input.holdId}`;
  const before = await lockBalance(tx, input.userId);
  const replay = await findEntry(tx, key);
  if (replay) return replay;
  const held = await lockHold(tx, input.holdId);
  if (held.status !== 'open') return null;
  await tx
    .update(creditHolds)
    .set({ status: 'released', capturedAmount: 0, closedAt: sql`now()` })
    .where(and(eq(creditHolds.id, held.id), eq(creditHolds.status, 'open')));
  return applyMovement(tx, before, {
    userId: input.userId,
    key,
    type: 'release',
    heldDelta: -(held.subscriptionAmount + held.purchasedAmount),
    subscriptionDelta: held.subscriptionAmount,
    purchasedDelta: held.purchasedAmount,
    holdId: held.id,
    reference: held.reference,
  });
}
