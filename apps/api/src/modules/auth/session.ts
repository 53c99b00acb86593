import { jwtVerify, SignJWT } from 'jose';

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
