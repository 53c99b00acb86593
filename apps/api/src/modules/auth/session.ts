import { randomUUID } from 'node:crypto';
import type { CookieSerializeOptions } from '@fastify/cookie';
import type { FastifyReply } from 'fastify';
import { jwtVerify, SignJWT } from 'jose';
import type { ApiConfig } from '../../config.js';

const ISSUER = 'pingvas-studio';
const AUDIENCE = 'pingvas-session';
export const SESSION_COOKIE = 'pingvas_session';

export interface SessionClaims {
  userId: string;
  /** Must equal users.session_version: bumping it revokes every session at once. */
  sessionVersion: number;
  /** This session's own id (`sid`): signing out records it in session_revocations. */
  sessionId: string;
  /** When the token stops verifying, in ms since the epoch. */
  expiresAt: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function key(secret: string): Uint8Array {
  return new TextEncoder().encode(secret);
}

/** A new session token; every token gets a fresh session id unless one is given. */
export async function signSession(
  secret: string,
  claims: Pick<SessionClaims, 'userId' | 'sessionVersion'> & { sessionId?: string },
  ttlSeconds: number,
): Promise<string> {
  return new SignJWT({ sv: claims.sessionVersion, sid: claims.sessionId ?? randomUUID() })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(claims.userId)
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(`${Math.floor(ttlSeconds)}s`)
    .sign(key(secret));
}

/** The claims of a valid, unexpired token we signed; null for anything else. */
export async function verifySession(secret: string, token: string): Promise<SessionClaims | null> {
  try {
    const { payload } = await jwtVerify(token, key(secret), {
      issuer: ISSUER,
      audience: AUDIENCE,
      algorithms: ['HS256'],
    });
    const { sub, sv, sid, exp } = payload;
    if (typeof sub !== 'string' || !UUID.test(sub) || typeof sid !== 'string' || !UUID.test(sid)) return null;
    if (typeof sv !== 'number' || typeof exp !== 'number') return null;
    return { userId: sub, sessionVersion: sv, sessionId: sid, expiresAt: exp * 1000 };
  } catch {
    return null;
  }
}

/** Cookies travel over TLS only when the studio is served over https. */
export function isSecureOrigin(config: Pick<ApiConfig, 'PUBLIC_URL'>): boolean {
  return new URL(config.PUBLIC_URL).protocol === 'https:';
}

function sessionCookieOptions(config: Pick<ApiConfig, 'PUBLIC_URL'>): CookieSerializeOptions {
  // SameSite=Lax: sent on top-level navigations (the OAuth redirect back to us), withheld
  // from cross-site subrequests and form POSTs; the CSRF guard covers the rest.
  return { httpOnly: true, sameSite: 'lax', secure: isSecureOrigin(config), path: '/' };
}

/** Signs a session for the user and sets it as the `pingvas_session` cookie. */
export async function startSession(
  reply: FastifyReply,
  config: Pick<ApiConfig, 'PUBLIC_URL' | 'SESSION_SECRET' | 'SESSION_TTL_HOURS'>,
  user: { id: string; sessionVersion: number },
): Promise<string> {
  const ttlSeconds = config.SESSION_TTL_HOURS * 3600;
  const token = await signSession(
    config.SESSION_SECRET,
    { userId: user.id, sessionVersion: user.sessionVersion },
    ttlSeconds,
  );
  reply.setCookie(SESSION_COOKIE, token, { ...sessionCookieOptions(config), maxAge: Math.floor(ttlSeconds) });
  return token;
}

export function endSession(reply: FastifyReply, config: Pick<ApiConfig, 'PUBLIC_URL'>): void {
  reply.clearCookie(SESSION_COOKIE, sessionCookieOptions(config));
}
