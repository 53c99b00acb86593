import { and, eq, lt, sql } from 'drizzle-orm';
import { schema, withSystem, withUser, type Database } from '@pingvas/db';
import { DomainError, type Tier } from '@pingvas/core';
import { getBalance, type Balance } from '../credits/ledger.js';
import { updateCardUrl } from '../email/templates.js';

const { users, creditBalances, subscriptions, sessionRevocations } = schema;

export type UserRow = typeof users.$inferSelect;

export interface SignInProfile {
  email: string;
  name?: string | null;
  avatarUrl?: string | null;
  /** Google's stable subject id; absent for the dev sign-in. */
  googleSub?: string | null;
}

/**
 * The one path that creates or finds an account at sign-in (Google and the dev form alike).
 * A new user gets tier `free` and a zero credit balance in the same transaction; a returning
 * user keeps tier, credits and sessions, and only their profile (name, picture) is refreshed.
 */
export async function upsertUser(db: Database, profile: SignInProfile): Promise<UserRow> {
  const email = profile.email.trim().toLowerCase();
  const name = profile.name ?? null;
  const avatarUrl = profile.avatarUrl ?? null;
  const googleSub = profile.googleSub ?? null;
  // Sign-in happens before there is a user to scope to: this is a system path by nature.
  return withSystem(db, async (tx) => {
    // Without a conflict target this also absorbs a concurrent first sign-in of the same person.
    const [created] = await tx
      .insert(users)
      .values({ email, name, avatarUrl, googleSub, tier: 'free' })
      .onConflictDoNothing()
      .returning();
    if (created) {
      await tx.insert(creditBalances).values({ userId: created.id });
      return created;
    }
    const [bySub] = googleSub ? await tx.select().from(users).where(eq(users.googleSub, googleSub)).for('update') : [];
    const [existing] = bySub ? [bySub] : await tx.select().from(users).where(eq(users.email, email)).for('update');
    if (!existing)
      throw new DomainError('CONFLICT', 'This account changed while signing in; please try again.', {
        reason: 'account_changed',
      });
    if (googleSub && existing.googleSub && existing.googleSub !== googleSub) {
      // The e-mail now belongs to a different Google account than the one that made this user.
      throw new DomainError('CONFLICT', 'This e-mail address is linked to a different Google account.', {
        reason: 'account_conflict',
      });
    }
    const [updated] = await tx
      .update(users)
      .set({
        name: sql`coalesce(${name}, ${users.name})`,
        avatarUrl: sql`coalesce(${avatarUrl}, ${users.avatarUrl})`,
        googleSub: sql`coalesce(${users.googleSub}, ${googleSub})`,
        updatedAt: sql`now()`,
      })
      .where(eq(users.id, existing.id))
      .returning();
    // Heals an account whose balance row was never made; an existing row is untouched.
    await tx.insert(creditBalances).values({ userId: existing.id }).onConflictDoNothing();
    return updated!;
  });
}

export interface AccountBanner {
  reason: string;
  message: string;
  actionUrl?: string;
}

export interface Me {
  id: string;
  email: string;
  name: string | null;
  avatarUrl: string | null;
  tier: Tier;
  balance: Balance;
  banner: AccountBanner | null;
}

const BANNER_MESSAGES: Record<string, string> = {
  subscription_cancelled: 'Your subscription was cancelled — update payment method to reactivate',
  payment_failed: 'Your last payment failed — please update your card',
};
const UNKNOWN_BANNER_MESSAGE = 'There is a problem with your account — please check your subscription';

/**
 * What the web shows about the signed-in user: profile, balance and any account banner. The
 * banner's action is our billing page, as in the e-mails: it asks the provider for a fresh
 * update-card link when clicked (the provider's own link is signed for about a day only).
 */
export async function getMe(db: Database, userId: string, publicUrl: string): Promise<Me> {
  return withUser(db, userId, async (tx) => {
    const [user] = await tx.select().from(users).where(eq(users.id, userId));
    if (!user) throw new DomainError('UNAUTHORIZED', 'This account no longer exists.', {});
    const balance = await getBalance(tx, userId);
    let banner: AccountBanner | null = null;
    if (user.bannerReason) {
      const [anySubscription] = await tx
        .select({ id: subscriptions.id })
        .from(subscriptions)
        .where(eq(subscriptions.userId, userId))
        .limit(1);
      banner = {
        reason: user.bannerReason,
        message: BANNER_MESSAGES[user.bannerReason] ?? UNKNOWN_BANNER_MESSAGE,
        ...(anySubscription ? { actionUrl: updateCardUrl(publicUrl.replace(/\/$/, '')) } : {}),
      };
    }
    return {
      id: user.id,
      email: user.email,
      name: user.name,
      avatarUrl: user.avatarUrl,
      tier: user.tier,
      balance,
      banner,
    };
  });
}

/** Revokes every session of the user: tokens carry the old version and stop verifying. */
export async function revokeAllSessions(db: Database, userId: string): Promise<number> {
  const [row] = await withUser(db, userId, (tx) =>
    tx
      .update(users)
      .set({ sessionVersion: sql`${users.sessionVersion} + 1`, updatedAt: sql`now()` })
      .where(eq(users.id, userId))
      .returning({ sessionVersion: users.sessionVersion }),
  );
  if (!row) throw new DomainError('UNAUTHORIZED', 'This account no longer exists.', {});
  return row.sessionVersion;
}

/**
 * Revokes one session (sign-out): its id is recorded until the token would have expired
 * anyway, and the user's records of already-expired tokens are dropped on the way.
 */
export async function revokeSession(
  db: Database,
  session: { userId: string; sessionId: string; expiresAt: number },
): Promise<void> {
  await withUser(db, session.userId, async (tx) => {
    await tx
      .delete(sessionRevocations)
      .where(and(eq(sessionRevocations.userId, session.userId), lt(sessionRevocations.expiresAt, sql`now()`)));
    await tx
      .insert(sessionRevocations)
      .values({ sessionId: session.sessionId, userId: session.userId, expiresAt: new Date(session.expiresAt) })
      .onConflictDoNothing();
  });
}
