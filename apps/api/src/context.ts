import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { and, eq, sql } from 'drizzle-orm';
import { schema, withUser } from '@pingvas/db';
import type { Tier } from '@pingvas/core';
import type { AppDeps } from './deps.js';
import { SESSION_COOKIE, verifySession, type SessionClaims } from './modules/auth/session.js';

export interface SessionUser {
  id: string;
  email: string;
  tier: Tier;
  sessionVersion: number;
}

/** A signed-in user and the session token they came with. */
export interface Session {
  user: SessionUser;
  claims: SessionClaims;
}

/**
 * One open WebSocket (live.routes.ts). Procedures called over it re-check its session
 * first and count its subscriptions; a failed check closes the socket.
 */
export interface LiveConnection {
  /** The user as of the latest check, or null once the session is revoked or expired (the socket is then closing). */
  recheck(): Promise<SessionUser | null>;
  /** Reserves a subscription slot; false when the socket already holds its maximum. */
  reserveSubscription(): boolean;
  releaseSubscription(): void;
}

export interface Context {
  deps: AppDeps;
  user: SessionUser | null;
  /** The session's token claims (sign-out revokes that session); absent for test callers and workers. */
  session?: SessionClaims;
  /** True only on /internal/trpc with a valid worker token; never alongside a user. */
  isWorker: boolean;
  /** Set on calls that arrive over a WebSocket. */
  live?: LiveConnection;
  req?: FastifyRequest;
  res?: FastifyReply;
}

/** The session token from the cookie, or from `Authorization: Bearer` for API clients. */
export function sessionTokenFrom(
  headers: { cookie?: string; authorization?: string },
  cookies?: Record<string, string | undefined>,
): string | null {
  const bearer = headers.authorization?.match(/^Bearer\s+(.+)$/i)?.[1];
  if (bearer) return bearer.trim();
  return cookies?.[SESSION_COOKIE] ?? null;
}

/**
 * The user a session's claims name, read fresh (tier included), if the session is still
 * good: not expired, of the user's current session version, and not signed out.
 */
export async function currentUser(deps: AppDeps, claims: SessionClaims): Promise<SessionUser | null> {
  if (Date.now() >= claims.expiresAt) return null;
  const { users, sessionRevocations: revoked } = schema;
  const [row] = await withUser(deps.db, claims.userId, (tx) =>
    tx
      .select({
        id: users.id,
        email: users.email,
        tier: users.tier,
        sessionVersion: users.sessionVersion,
        revoked: sql<boolean>`exists (select 1 from ${revoked} where ${and(
          eq(revoked.sessionId, claims.sessionId),
          eq(revoked.userId, claims.userId),
        )})`,
      })
      .from(users)
      .where(eq(users.id, claims.userId)),
  );
  if (!row || row.revoked || row.sessionVersion !== claims.sessionVersion) return null;
  const { revoked: _revoked, ...user } = row;
  return user;
}

/** Resolves a token to its session, if the token is valid and the session not revoked. */
export async function sessionFromToken(deps: AppDeps, token: string | null): Promise<Session | null> {
  if (!token) return null;
  const claims = await verifySession(deps.config.SESSION_SECRET, token);
  if (!claims) return null;
  const user = await currentUser(deps, claims);
  return user ? { user, claims } : null;
}

/** Resolves a token to the user it names, if it is valid and not revoked. */
export async function userFromSessionToken(deps: AppDeps, token: string | null): Promise<SessionUser | null> {
  return (await sessionFromToken(deps, token))?.user ?? null;
}

type RequestWithCookies = FastifyRequest & { cookies?: Record<string, string | undefined> };

/** Context of a /trpc request: the user of its session cookie or bearer token, if any. */
export async function createContext(deps: AppDeps, req?: FastifyRequest, res?: FastifyReply): Promise<Context> {
  const token = req ? sessionTokenFrom(req.headers, (req as RequestWithCookies).cookies) : null;
  const session = await sessionFromToken(deps, token);
  return { deps, user: session?.user ?? null, session: session?.claims, isWorker: false, req, res };
}

/** Constant-time comparison of a presented worker token against the configured one. */
export function isWorkerToken(presented: string | undefined, expected: string): boolean {
  if (!presented) return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Context of a /internal/trpc request: a worker when it presents WORKER_TOKEN as a bearer, never a user. */
export function createWorkerContext(deps: AppDeps, req: FastifyRequest): Context {
  const token = req.headers.authorization?.match(/^Bearer\s+(.+)$/i)?.[1];
  return { deps, user: null, isWorker: isWorkerToken(token, deps.config.WORKER_TOKEN), req };
}
