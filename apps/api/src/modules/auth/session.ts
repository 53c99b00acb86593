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
}

function key(secret: string): Uint8Array {
  return new TextEncoder().encode(secret);
}

export async function signSession(secret: string, claims: SessionClaims, ttlSeconds: number): Promise<string> {
  return new SignJWT({ sv: claims.sessionVersion })
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
    const { payload } = await jwtVerify(token, key(secret), { issuer: ISSUER, audience: AUDIENCE, algorithms: ['HS256'] });
    if (typeof payload.sub !== 'string' || typeof payload.sv !== 'number') return null;
    return { userId: payload.sub, sessionVersion: payload.sv };
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
  const token = await signSession(config.SESSION_SECRET, { userId: user.id, sessionVersion: user.sessionVersion }, ttlSeconds);
  reply.setCookie(SESSION_COOKIE, token, { ...sessionCookieOptions(config), maxAge: Math.floor(ttlSeconds) });
  return token;
}

export function endSession(reply: FastifyReply, config: Pick<ApiConfig, 'PUBLIC_URL'>): void {
  reply.clearCookie(SESSION_COOKIE, sessionCookieOptions(config));
}
