import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { eq } from 'drizzle-orm';
import { schema, withSystem } from '@pingvas/db';
import type { SessionUser } from '../../context.js';
import { createTestApp, type TestApp } from '../../test/harness.js';
import { buildServer } from '../../server.js';
import { upsertUser } from './auth.service.js';
import { CSRF_HEADER } from './csrf.js';
import { SESSION_COOKIE, signSession } from './session.js';

let app: TestApp;
let server: FastifyInstance;

beforeAll(async () => {
  app = await createTestApp({ SIGNIN_RATE_LIMIT: '1000' });
  server = await buildServer(app.deps);
});
afterAll(async () => {
  await server?.close();
  await app?.close();
});

async function devLogin(email: string, target: FastifyInstance = server): Promise<LightMyRequestResponse> {
  return target.inject({ method: 'POST', url: '/api/v1/auth/dev-login', payload: { email } });
}

function sessionFrom(res: LightMyRequestResponse): string {
  const value = res.cookies.find((c) => c.name === SESSION_COOKIE)?.value;
  expect(value).toBeTruthy();
  return value!;
}

/** One tRPC call over HTTP, as the web's client makes it. */
async function trpc(path: string, kind: 'query' | 'mutation', auth: Pick<InjectOptions, 'cookies' | 'headers'> = {}) {
  const res = await server.inject(
    kind === 'query'
      ? { method: 'GET', url: `/trpc/${path}`, ...auth }
      : {
          method: 'POST',
          url: `/trpc/${path}`,
          payload: { json: null },
          ...auth,
          headers: { [CSRF_HEADER]: '1', ...auth.headers },
        },
  );
  const body = res.json();
  return {
    status: res.statusCode,
    data: body.result?.data?.json,
    code: body.error?.json?.data?.code as string | undefined,
  };
}

const withCookie = (token: string) => ({ cookies: { [SESSION_COOKIE]: token } });

describe('dev sign-in', () => {
  it('creates the user through the same path as Google (tier free, balance 0) and returns them', async () => {
    const res = await devLogin('Dev.Person@Example.test');
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({
      email: 'dev.person@example.test',
      tier: 'free',
      balance: { available: 0, subscription: 0, purchased: 0, held: 0 },
      banner: null,
    });
    const cookie = res.cookies.find((c) => c.name === SESSION_COOKIE)!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });
    const me = await trpc('user.me', 'query', withCookie(cookie.value));
    expect(me.data.id).toBe(body.id);

    const again = await devLogin('dev.person@example.test');
    expect(again.json().id).toBe(body.id);
    const rows = await app.database.admin`select count(*)::int as n from credit_balances where user_id = ${body.id}`;
    expect(rows[0]!.n).toBe(1);
  });

  it('makes exactly one account when the same new person signs in many times at once', async () => {
    const results = await Promise.all(
      Array.from({ length: 12 }, () => upsertUser(app.deps.db, { email: 'race@example.test', googleSub: 'race-sub' })),
    );
    expect(new Set(results.map((u) => u.id)).size).toBe(1);
    const rows = await app.database.admin`
      select (select count(*)::int from users where email = 'race@example.test') as users,
             (select count(*)::int from credit_balances where user_id = ${results[0]!.id}) as balances`;
    expect(rows[0]).toEqual({ users: 1, balances: 1 });
  });

  it('says so in /api/v1/auth/config', async () => {
    const res = await server.inject({ method: 'GET', url: '/api/v1/auth/config' });
    expect(res.json()).toEqual({ google: false, devLogin: true });
  });

  it('refuses a bad e-mail with 400 and creates nothing', async () => {
    const res = await devLogin('not-an-email');
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/e-mail/);
    expect(res.cookies).toHaveLength(0);
  });

  it('does not exist in production, nor with NODE_ENV=development on a public address (404)', async () => {
    for (const NODE_ENV of ['production', 'development'] as const) {
      const production = await buildServer({ ...app.deps, config: { ...app.config, NODE_ENV, development: false } });
      try {
        const res = await devLogin('prod@example.test', production);
        expect(res.statusCode, NODE_ENV).toBe(404);
        expect((await production.inject({ method: 'GET', url: '/api/v1/auth/config' })).json()).toEqual({
          google: false,
          devLogin: false,
        });
      } finally {
        await production.close();
      }
    }
    const rows = await app.database.admin`select 1 from users where email = 'prod@example.test'`;
    expect(rows).toHaveLength(0);
  });

  it('is rate-limited per IP: past the limit → 429 with a clear message; other IPs unaffected', async () => {
    // Behind a trusted proxy: X-Forwarded-For names the client.
    const limited = await buildServer({
      ...app.deps,
      config: { ...app.config, SIGNIN_RATE_LIMIT: 3, TRUST_PROXY: true },
    });
    try {
      const from = (ip: string) =>
        limited.inject({
          method: 'POST',
          url: '/api/v1/auth/dev-login',
          payload: { email: 'rl@example.test' },
          headers: { 'x-forwarded-for': ip },
        });
      for (let i = 0; i < 3; i++) expect((await from('203.0.113.7')).statusCode).toBe(200);
      const refused = await from('203.0.113.7');
      expect(refused.statusCode).toBe(429);
      expect(refused.json().message).toMatch(/Too many sign-in attempts/);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      expect((await from('203.0.113.8')).statusCode).toBe(200);
    } finally {
      await limited.close();
    }
  });
});

describe('sessions', () => {
  let user: SessionUser;
  let token: string;
  beforeAll(async () => {
    token = sessionFrom(await devLogin('session@example.test'));
    user = (await trpc('user.me', 'query', withCookie(token))).data;
  });

  it('accepts the session as a cookie and as Authorization: Bearer', async () => {
    expect((await trpc('user.me', 'query', withCookie(token))).data.email).toBe('session@example.test');
    expect((await trpc('user.me', 'query', { headers: { authorization: `Bearer ${token}` } })).data.email).toBe(
      'session@example.test',
    );
  });

  it('treats a missing, tampered, foreign-signed or expired token as signed out', async () => {
    const other = await app.createUser();
    const [header, payload, signature] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
    const tampered = [
      header,
      Buffer.from(JSON.stringify({ ...claims, sub: other.id })).toString('base64url'),
      signature,
    ].join('.');
    const foreign = await signSession(
      'another-secret-that-is-long-enough-0123456789',
      { userId: user.id, sessionVersion: 0 },
      3600,
    );
    const expired = await new SignJWT({ sv: 0 })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(user.id)
      .setIssuer('pingvas-studio')
      .setAudience('pingvas-session')
      .setIssuedAt(Math.floor(Date.now() / 1000) - 7200)
      .setExpirationTime(Math.floor(Date.now() / 1000) - 3600)
      .sign(new TextEncoder().encode(app.config.SESSION_SECRET));
    const unsigned = [Buffer.from('{"alg":"none"}').toString('base64url'), payload, ''].join('.');

    expect((await trpc('user.me', 'query')).code).toBe('UNAUTHORIZED');
    for (const bad of [tampered, foreign, expired, unsigned, 'garbage']) {
      const viaCookie = await trpc('user.me', 'query', withCookie(bad));
      expect(viaCookie).toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
      expect((await trpc('user.me', 'query', { headers: { authorization: `Bearer ${bad}` } })).code).toBe(
        'UNAUTHORIZED',
      );
    }
  });

  it('user.signOutEverywhere revokes every session of the user, and only theirs', async () => {
    const laptop = sessionFrom(await devLogin('revoke@example.test'));
    const phone = sessionFrom(await devLogin('revoke@example.test'));
    const bystander = sessionFrom(await devLogin('bystander@example.test'));
    const res = await server.inject({
      method: 'POST',
      url: '/trpc/user.signOutEverywhere',
      payload: { json: null },
      cookies: { [SESSION_COOKIE]: laptop },
      headers: { [CSRF_HEADER]: '1' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.cookies.find((c) => c.name === SESSION_COOKIE)?.value).toBe('');
    expect((await trpc('user.me', 'query', withCookie(laptop))).code).toBe('UNAUTHORIZED');
    expect((await trpc('user.me', 'query', withCookie(phone))).code).toBe('UNAUTHORIZED');
    expect((await trpc('user.me', 'query', withCookie(bystander))).status).toBe(200);
    // Signing in again works and gives a session of the new version.
    const fresh = sessionFrom(await devLogin('revoke@example.test'));
    expect((await trpc('user.me', 'query', withCookie(fresh))).status).toBe(200);
  });

  it('POST /api/v1/auth/logout and user.signOut revoke that session on the server and clear the cookie; other sessions live on', async () => {
    const mine = sessionFrom(await devLogin('logout@example.test'));
    const other = sessionFrom(await devLogin('logout@example.test'));
    const logout = await server.inject({
      method: 'POST',
      url: '/api/v1/auth/logout',
      cookies: { [SESSION_COOKIE]: mine },
      headers: { [CSRF_HEADER]: '1' },
    });
    expect(logout.statusCode).toBe(200);
    const cleared = logout.cookies.find((c) => c.name === SESSION_COOKIE)!;
    expect(cleared.value).toBe('');
    expect(cleared.expires!.getTime()).toBeLessThan(Date.now());
    // The old cookie, replayed, is refused: the token itself is revoked, not just forgotten by the browser.
    expect((await trpc('user.me', 'query', withCookie(mine))).code).toBe('UNAUTHORIZED');
    expect((await trpc('user.me', 'query', { headers: { authorization: `Bearer ${mine}` } })).code).toBe(
      'UNAUTHORIZED',
    );
    expect((await trpc('user.me', 'query', withCookie(other))).status).toBe(200);

    const res = await server.inject({
      method: 'POST',
      url: '/trpc/user.signOut',
      payload: { json: null },
      cookies: { [SESSION_COOKIE]: other },
      headers: { [CSRF_HEADER]: '1' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.cookies.find((c) => c.name === SESSION_COOKIE)?.value).toBe('');
    expect((await trpc('user.me', 'query', withCookie(other))).code).toBe('UNAUTHORIZED');
    // Signing out twice, or with a revoked token, changes nothing and says so plainly.
    expect(
      (
        await server.inject({
          method: 'POST',
          url: '/trpc/user.signOut',
          payload: { json: null },
          cookies: { [SESSION_COOKIE]: other },
          headers: { [CSRF_HEADER]: '1' },
        })
      ).statusCode,
    ).toBe(401);
    const revoked = await app.database.admin`select count(*)::int as n from session_revocations`;
    expect(revoked[0]!.n).toBe(2);
  });
});

describe('user.me banner', () => {
  it('shows the payments module’s banner, its action our billing page (never a stored provider link, which expires)', async () => {
    const token = sessionFrom(await devLogin('banner@example.test'));
    const me = (await trpc('user.me', 'query', withCookie(token))).data;
    const setBanner = (reason: string | null) =>
      withSystem(app.deps.db, (tx) =>
        tx.update(schema.users).set({ bannerReason: reason }).where(eq(schema.users.id, me.id)),
      );

    await setBanner('payment_failed');
    expect((await trpc('user.me', 'query', withCookie(token))).data.banner).toEqual({
      reason: 'payment_failed',
      message: 'Your last payment failed — please update your card',
    });

    await withSystem(app.deps.db, async (tx) => {
      await tx.insert(schema.subscriptions).values({
        userId: me.id,
        providerSubscriptionId: 501,
        variantId: 1,
        tier: 'starter',
        status: 'expired',
        updatePaymentUrl: 'https://pay.example.test/old',
        createdAt: new Date(Date.now() - 86_400_000),
      });
      await tx.insert(schema.subscriptions).values({
        userId: me.id,
        providerSubscriptionId: 502,
        variantId: 1,
        tier: 'pro',
        status: 'cancelled',
        updatePaymentUrl: 'https://pay.example.test/new',
      });
    });
    await setBanner('subscription_cancelled');
    // Our billing page, which asks for a fresh link: the stored provider links expire within a day.
    expect((await trpc('user.me', 'query', withCookie(token))).data.banner).toEqual({
      reason: 'subscription_cancelled',
      message: 'Your subscription was cancelled — update payment method to reactivate',
      actionUrl: `${new URL(app.config.PUBLIC_URL).origin}/billing?update-card=1`,
    });

    await setBanner(null);
    expect((await trpc('user.me', 'query', withCookie(token))).data.banner).toBeNull();
  });
});

describe('CSRF guard', () => {
  let token: string;
  beforeAll(async () => {
    token = sessionFrom(await devLogin('csrf@example.test'));
  });
  const post = (
    url: string,
    headers: Record<string, string>,
    cookies: Record<string, string> = { [SESSION_COOKIE]: token },
  ) =>
    server.inject({
      method: 'POST',
      url,
      payload: url.startsWith('/trpc') ? { json: null } : undefined,
      cookies,
      headers,
    });

  it('refuses a cookie-authenticated tRPC mutation without the header or our Origin (403)', async () => {
    const bare = await post('/trpc/user.signOut', {});
    expect(bare.statusCode).toBe(403);
    expect(bare.json().message).toMatch(/x-pingvas-csrf/);
    expect(bare.cookies).toHaveLength(0);
    expect((await post('/trpc/user.signOut', { origin: 'https://evil.example.test' })).statusCode).toBe(403);
    expect((await post('/trpc/user.signOutEverywhere', {})).statusCode).toBe(403);
    // Nothing happened: the session still works.
    expect((await trpc('user.me', 'query', withCookie(token))).status).toBe(200);
  });

  it('lets it through with the header, with our Origin, or with a Bearer token instead of the cookie', async () => {
    // Each sign-out revokes its session, so each attempt brings a session of its own.
    const fresh = async () => ({ [SESSION_COOKIE]: sessionFrom(await devLogin('csrf@example.test')) });
    expect((await post('/trpc/user.signOut', { [CSRF_HEADER]: '1' }, await fresh())).statusCode).toBe(200);
    expect(
      (await post('/trpc/user.signOut', { origin: new URL(app.config.PUBLIC_URL).origin }, await fresh())).statusCode,
    ).toBe(200);
    const bearer = (await fresh())[SESSION_COOKIE];
    expect((await post('/trpc/user.signOut', { authorization: `Bearer ${bearer}` }, {})).statusCode).toBe(200);
  });

  it('guards the /api/v1 POST routes too, but not the webhooks or queries', async () => {
    expect((await post('/api/v1/auth/logout', {})).statusCode).toBe(403);
    const other = { [SESSION_COOKIE]: sessionFrom(await devLogin('csrf@example.test')) };
    expect((await post('/api/v1/auth/logout', { [CSRF_HEADER]: '1' }, other)).statusCode).toBe(200);
    // Server-to-server and signed: never asked for the header (whatever the route answers).
    expect((await post('/api/v1/webhooks/lemon-squeezy', {})).statusCode).not.toBe(403);
    expect((await trpc('user.me', 'query', withCookie(token))).status).toBe(200);
  });
});
