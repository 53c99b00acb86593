import type { FastifyReply, FastifyRequest } from 'fastify';
import { eq } from 'drizzle-orm';
import { schema, withUser } from '@pingvas/db';
import type { Tier } from '@pingvas/core';
import type { AppDeps } from './deps.js';
import { SESSION_COOKIE, verifySession } from './modules/auth/session.js';

export interface SessionUser {
  id: string;
  email: string;
  tier: Tier;
  sessionVersion: number;
}

export interface Context {
  deps: AppDeps;
  user: SessionUser | null;
  /** True only on /internal/trpc with a valid worker token; never alongside a user. */
  isWorker: boolean;
  req?: FastifyRequest;
  res?: FastifyReply;
}

/** The session token from the cookie, or from `Authorization: Bearer` for API clients. */
export function sessionTokenFrom(headers: { cookie?: string; authorization?: string }, cookies?: Record<string, string | undefined>): string | null {
  const bearer = headers.authorization?.match(/^Bearer\s+(.+)$/i)?.[1];
  if (bearer) return bearer.trim();
  return cookies?.[SESSION_COOKIE] ?? null;
}

/** Resolves a token to the user it names, if it is valid and not revoked. */
export async function userFromSessionToken(deps: AppDeps, token: string | null): Promise<SessionUser | null> {
  if (!token) return null;
  const claims = await verifySession(deps.config.SESSION_SECRET, token);
  if (!claims) return null;
  const [row] = await withUser(deps.db, claims.userId, (tx) =>
    tx.select({ id: schema.users.id, email: schema.users.email, tier: schema.users.tier, sessionVersion: schema.users.sessionVersion })
      .from(schema.users).where(eq(schema.users.id, claims.userId)),
  );
  if (!row || row.sessionVersion !== claims.sessionVersion) return null;
  return row;
}

export async function createContext(deps: AppDeps, req?: FastifyRequest, res?: FastifyReply): Promise<Context> {
  const token = req ? sessionTokenFrom(req.headers, (req as FastifyRequest & { cookies?: Record<string, string | undefined> }).cookies) : null;
  return { deps, user: await userFromSessionToken(deps, token), isWorker: false, req, res };
}
