import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { schema, withSystem } from '@pingvas/db';
import { startFakeGoogle, type FakeGoogle } from '@pingvas/testkit';
import { createTestApp, type TestApp } from '../../test/harness.js';
import { expectLedgerInvariants } from '../../test/invariants.js';
import { buildServer } from '../../server.js';
import { grant } from '../credits/ledger.js';
import { SESSION_COOKIE, verifySession } from './session.js';

let google: FakeGoogle;
let app: TestApp;
let server: FastifyInstance;

beforeAll(async () => {
  google = await startFakeGoogle();
  app = await createTestApp({ ...google.env, SIGNIN_RATE_LIMIT: '1000' });
  server = await buildServer(app.deps);
});
afterAll(async () => {
  await server?.close();
  await app?.close();
  await google?.close();
});
afterEach(() => google.reset());

function cookieJar(res: LightMyRequestResponse): Record<string, string> {
  return Object.fromEntries(res.cookies.filter((c) => c.value !== '').map((c) => [c.name, c.value]));
}

/** Browser steps: our login → the fake consent screen → back to our callback. */
async function consent(): Promise<{
  callbackPath: string;
  cookies: Record<string, string>;
  login: LightMyRequestResponse;
}> {
  const login = await server.inject({ method: 'GET', url: '/api/v1/oauth/google/login' });
  expect(login.statusCode).toBe(302);
  const atGoogle = await fetch(login.headers.location as string, { redirect: 'manual' });
  expect(atGoogle.status).toBe(302);
  const back = new URL(atGoogle.headers.get('location')!);
  expect(back.origin + back.pathname).toBe(`${app.config.PUBLIC_URL}/api/v1/oauth/google/callback`);
  return { callbackPath: back.pathname + back.search, cookies: cookieJar(login), login };
}

async function signIn(): Promise<LightMyRequestResponse> {
  const { callbackPath, cookies } = await consent();
  return server.inject({ method: 'GET', url: callbackPath, cookies });
}

async function me(token: string) {
  const res = await server.inject({ method: 'GET', url: '/trpc/user.me', cookies: { [SESSION_COOKIE]: token } });
  return { status: res.statusCode, body: res.json() };
}

function sessionFrom(res: LightMyRequestResponse): string {
  const cookie = res.cookies.find((c) => c.name === SESSION_COOKIE);
  expect(cookie?.value).toBeTruthy();
  return cookie!.value;
}

function expectErrorPage(res: LightMyRequestResponse, reason: string, status: number): void {
  expect(res.statusCode).toBe(status);
  expect(res.headers['content-type']).toMatch(/^text\/html/);
  expect(res.body).toContain(`data-reason="${reason}"`);
  expect(res.body).toContain('href="/api/v1/oauth/google/login">Try again');
  expect(res.body).not.toMatch(/\bat .+\.(ts|js):\d+/);
  expect(res.cookies.find((c) => c.name === SESSION_COOKIE && c.value)).toBeUndefined();
}

async function userRows(email: string) {
  return app.database.admin`
    select u.*, b.subscription_credits, b.purchased_credits, b.held_credits
    from users u left join credit_balances b on b.user_id = u.id where u.email = ${email}`;
}

describe('GET /api/v1/oauth/google/login', () => {
  it('redirects to the consent screen with state and an S256 PKCE challenge kept in short-lived httpOnly cookies', async () => {
    const { login } = await consent();
    const url = new URL(login.headers.location as string);
    expect(url.origin + url.pathname).toBe(google.env.GOOGLE_AUTH_URL);
    expect(url.searchParams.get('client_id')).toBe(google.clientId);
    expect(url.searchParams.get('redirect_uri')).toBe(`${app.config.PUBLIC_URL}/api/v1/oauth/google/callback`);
    expect(url.searchParams.get('scope')).toBe('openid email profile');
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    const state = login.cookies.find((c) => c.name === 'pingvas_oauth_state')!;
    const verifier = login.cookies.find((c) => c.name === 'pingvas_oauth_verifier')!;
    expect(url.searchParams.get('state')).toBe(state.value);
    expect(url.searchParams.get('code_challenge')).toBe(
      createHash('sha256').update(verifier.value).digest('base64url'),
    );
    for (const cookie of [state, verifier]) {
      expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', maxAge: 600, path: '/api/v1/oauth/google' });
      expect(cookie.secure).toBeFalsy();
    }
  });

  it('reports Google on and dev sign-in off through /api/v1/auth/config, and refuses dev sign-in (404)', async () => {
    const config = await server.inject({ method: 'GET', url: '/api/v1/auth/config' });
    expect(config.json()).toEqual({ google: true, devLogin: false });
    const dev = await server.inject({
      method: 'POST',
      url: '/api/v1/auth/dev-login',
      payload: { email: 'dev@example.test' },
    });
    expect(dev.statusCode).toBe(404);
    expect(await userRows('dev@example.test')).toHaveLength(0);
  });
});

describe('GET /api/v1/oauth/google/callback', () => {
  it('creates a new user (tier free, balance 0), sets the session cookie and lands on the studio', async () => {
    google.behaviour.user = {
      sub: '1001',
      email: 'new.person@example.test',
      emailVerified: true,
      name: 'New Person',
      picture: 'https://lh3.example.test/new.png',
    };
    const res = await signIn();
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe(`${app.config.PUBLIC_URL}/studio`);
    const cookie = res.cookies.find((c) => c.name === SESSION_COOKIE)!;
    expect(cookie).toMatchObject({
      httpOnly: true,
      sameSite: 'Lax',
      path: '/',
      maxAge: app.config.SESSION_TTL_HOURS * 3600,
    });
    expect(cookie.secure).toBeFalsy();
    // The one-attempt state cookies are gone.
    expect(res.cookies.find((c) => c.name === 'pingvas_oauth_state')?.value).toBe('');

    const [row] = await userRows('new.person@example.test');
    expect(row).toMatchObject({
      tier: 'free',
      google_sub: '1001',
      name: 'New Person',
      avatar_url: 'https://lh3.example.test/new.png',
      subscription_credits: 0,
      purchased_credits: 0,
      held_credits: 0,
    });
    const { status, body } = await me(cookie.value);
    expect(status).toBe(200);
    expect(body.result.data.json).toEqual({
      id: row!.id,
      email: 'new.person@example.test',
      name: 'New Person',
      avatarUrl: 'https://lh3.example.test/new.png',
      tier: 'free',
      balance: { available: 0, subscription: 0, purchased: 0, held: 0 },
      banner: null,
    });
  });

  it('lets a returning user keep their id, tier, credits and sessions; only the profile is refreshed', async () => {
    google.behaviour.user = { sub: '1002', email: 'returning@example.test', emailVerified: true, name: 'Old Name' };
    const first = sessionFrom(await signIn());
    const [created] = await userRows('returning@example.test');
    await withSystem(app.deps.db, async (tx) => {
      await grant(tx, {
        userId: created!.id,
        key: 'test:returning:pack',
        type: 'purchase',
        bucket: 'purchased',
        amount: 1000,
      });
      await tx.update(schema.users).set({ tier: 'pro' }).where(eq(schema.users.id, created!.id));
    });

    google.behaviour.user = {
      sub: '1002',
      email: 'returning@example.test',
      emailVerified: true,
      name: 'New Name',
      picture: 'https://lh3.example.test/r.png',
    };
    const second = sessionFrom(await signIn());
    const rows = await userRows('returning@example.test');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      id: created!.id,
      tier: 'pro',
      session_version: created!.session_version,
      created_at: created!.created_at,
      purchased_credits: 1000,
      name: 'New Name',
      avatar_url: 'https://lh3.example.test/r.png',
    });
    expect((await me(first)).status).toBe(200);
    expect((await me(second)).body.result.data.json.balance).toEqual({
      available: 1000,
      subscription: 0,
      purchased: 1000,
      held: 0,
    });
    await expectLedgerInvariants(app.database.admin);
  });

  it('links Google to an account first made by the same e-mail (one upsert path)', async () => {
    const existing = await app.createUser({ email: 'linked@example.test' });
    google.behaviour.user = { sub: '1003', email: 'linked@example.test', emailVerified: true };
    const token = sessionFrom(await signIn());
    expect((await verifySession(app.config.SESSION_SECRET, token))?.userId).toBe(existing.id);
    expect((await userRows('linked@example.test'))[0]).toMatchObject({ id: existing.id, google_sub: '1003' });
  });

  it('refuses an e-mail already linked to another Google account', async () => {
    google.behaviour.user = { sub: '1004', email: 'taken@example.test', emailVerified: true };
    await signIn();
    google.behaviour.user = { sub: '9999', email: 'taken@example.test', emailVerified: true };
    expectErrorPage(await signIn(), 'account_conflict', 409);
    expect((await userRows('taken@example.test'))[0]).toMatchObject({ google_sub: '1004' });
  });

  it('explains a denied consent and offers to try again', async () => {
    google.behaviour.deny = true;
    google.behaviour.user.email = 'denied@example.test';
    expectErrorPage(await signIn(), 'access_denied', 400);
    expect(await userRows('denied@example.test')).toHaveLength(0);
  });

  it('refuses a forged state, a missing state cookie and a missing verifier', async () => {
    google.behaviour.user.email = 'forged@example.test';
    const forged = await consent();
    const url = new URL(forged.callbackPath, 'http://x');
    url.searchParams.set('state', 'attacker-chosen-state');
    expectErrorPage(
      await server.inject({ method: 'GET', url: url.pathname + url.search, cookies: forged.cookies }),
      'invalid_state',
      400,
    );

    const noCookie = await consent();
    expectErrorPage(await server.inject({ method: 'GET', url: noCookie.callbackPath }), 'invalid_state', 400);

    const noVerifier = await consent();
    expectErrorPage(
      await server.inject({
        method: 'GET',
        url: noVerifier.callbackPath,
        cookies: { pingvas_oauth_state: noVerifier.cookies.pingvas_oauth_state! },
      }),
      'invalid_state',
      400,
    );
    expect(await userRows('forged@example.test')).toHaveLength(0);
  });

  it('refuses a replayed code (codes are single use)', async () => {
    google.behaviour.user.email = 'replay@example.test';
    const { callbackPath, cookies } = await consent();
    expect((await server.inject({ method: 'GET', url: callbackPath, cookies })).statusCode).toBe(302);
    const replay = await server.inject({ method: 'GET', url: callbackPath, cookies });
    expectErrorPage(replay, 'invalid_code', 400);
    expect(google.refusals.at(-1)?.error).toBe('invalid_grant');
  });

  it('refuses an expired code', async () => {
    google.behaviour.codeTtlSeconds = 0;
    google.behaviour.user.email = 'slow@example.test';
    expectErrorPage(await signIn(), 'invalid_code', 400);
    expect(google.refusals.at(-1)?.description).toMatch(/expired/);
    expect(await userRows('slow@example.test')).toHaveLength(0);
  });

  it('refuses an ID token for another audience', async () => {
    google.behaviour.audience = 'someone-elses-client.apps.googleusercontent.com';
    google.behaviour.user.email = 'aud@example.test';
    expectErrorPage(await signIn(), 'invalid_token', 400);
    expect(await userRows('aud@example.test')).toHaveLength(0);
  });

  it('refuses an expired ID token', async () => {
    google.behaviour.idTokenTtlSeconds = -600;
    google.behaviour.user.email = 'expired@example.test';
    expectErrorPage(await signIn(), 'invalid_token', 400);
    expect(await userRows('expired@example.test')).toHaveLength(0);
  });

  it('refuses an ID token from another issuer or signed with a key not in the JWKS', async () => {
    google.behaviour.issuer = 'https://evil.example.test';
    google.behaviour.user.email = 'iss@example.test';
    expectErrorPage(await signIn(), 'invalid_token', 400);
    google.reset();
    google.behaviour.signWithUnknownKey = true;
    google.behaviour.user.email = 'iss@example.test';
    expectErrorPage(await signIn(), 'invalid_token', 400);
    expect(await userRows('iss@example.test')).toHaveLength(0);
  });

  it('refuses an unverified e-mail address', async () => {
    google.behaviour.user = { sub: '1005', email: 'unverified@example.test', emailVerified: false };
    expectErrorPage(await signIn(), 'unverified_email', 403);
    expect(await userRows('unverified@example.test')).toHaveLength(0);
  });

  it('rate-limits login and callback per IP: 429 with a page that says so', async () => {
    // Behind a trusted proxy: X-Forwarded-For names the client.
    const limited = await buildServer({
      ...app.deps,
      config: { ...app.config, SIGNIN_RATE_LIMIT: 2, TRUST_PROXY: true },
    });
    try {
      const headers = { 'x-forwarded-for': '198.51.100.9' };
      const logins = [];
      for (let i = 0; i < 3; i++)
        logins.push(await limited.inject({ method: 'GET', url: '/api/v1/oauth/google/login', headers }));
      expect(logins.map((r) => r.statusCode)).toEqual([302, 302, 429]);
      expect(logins[2]!.body).toContain('Too many sign-in attempts');
      expect(Number(logins[2]!.headers['retry-after'])).toBeGreaterThan(0);
      expect(
        (
          await limited.inject({
            method: 'GET',
            url: '/api/v1/oauth/google/login',
            headers: { 'x-forwarded-for': '198.51.100.10' },
          })
        ).statusCode,
      ).toBe(302);

      const callbacks = [];
      for (let i = 0; i < 3; i++)
        callbacks.push(
          await limited.inject({ method: 'GET', url: '/api/v1/oauth/google/callback?code=x&state=y', headers }),
        );
      expect(callbacks.map((r) => r.statusCode)).toEqual([400, 400, 429]);
      expect(callbacks[2]!.body).toContain('data-reason="rate_limited"');
    } finally {
      await limited.close();
    }
  });

  it('says Google is unreachable when the token endpoint or the JWKS cannot be reached (502)', async () => {
    for (const broken of [
      { GOOGLE_TOKEN_URL: 'http://127.0.0.1:1/token' },
      { GOOGLE_JWKS_URL: 'http://127.0.0.1:1/certs' },
    ]) {
      const offline = await buildServer({ ...app.deps, config: { ...app.config, ...broken } });
      try {
        const login = await offline.inject({ method: 'GET', url: '/api/v1/oauth/google/login' });
        const atGoogle = await fetch(login.headers.location as string, { redirect: 'manual' });
        const back = new URL(atGoogle.headers.get('location')!);
        expectErrorPage(
          await offline.inject({ method: 'GET', url: back.pathname + back.search, cookies: cookieJar(login) }),
          'provider_unavailable',
          502,
        );
      } finally {
        await offline.close();
      }
    }
  });

  it('marks cookies Secure when PUBLIC_URL is https', async () => {
    const secure = await buildServer({
      ...app.deps,
      config: { ...app.config, PUBLIC_URL: 'https://studio.example.test' },
    });
    try {
      const login = await secure.inject({ method: 'GET', url: '/api/v1/oauth/google/login' });
      expect(new URL(login.headers.location as string).searchParams.get('redirect_uri')).toBe(
        'https://studio.example.test/api/v1/oauth/google/callback',
      );
      expect(login.cookies.every((c) => c.secure === true)).toBe(true);
      const atGoogle = await fetch(login.headers.location as string, { redirect: 'manual' });
      const back = new URL(atGoogle.headers.get('location')!);
      const res = await secure.inject({ method: 'GET', url: back.pathname + back.search, cookies: cookieJar(login) });
      expect(res.statusCode).toBe(302);
      expect(res.headers.location).toBe('https://studio.example.test/studio');
      expect(res.cookies.find((c) => c.name === SESSION_COOKIE)?.secure).toBe(true);
    } finally {
      await secure.close();
    }
  });
});
