import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

/** The Google account the fake signs in as. */
export interface FakeGoogleUser {
  sub: string;
  email: string;
  emailVerified: boolean;
  name?: string;
  picture?: string;
}

/** Knobs for the next consents: each field changes what the fake does or puts in the ID token. */
export interface FakeGoogleBehaviour {
  /** The user clicks "Cancel" on the consent screen: back to the app with `error=access_denied`. */
  deny: boolean;
  user: FakeGoogleUser;
  /** `aud` of the ID token; defaults to the client id. */
  audience?: string;
  /** `iss` of the ID token; defaults to the fake's issuer. */
  issuer?: string;
  /** Seconds until the ID token expires; negative makes an already expired token. */
  idTokenTtlSeconds: number;
  /** Seconds an authorization code stays valid; 0 makes codes expire at once. */
  codeTtlSeconds: number;
  /** Sign the ID token with a key that is not in the JWKS (a forged token). */
  signWithUnknownKey: boolean;
}

export interface FakeGoogle {
  /** Base URL of the loopback server. */
  url: string;
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** GOOGLE_* variables that point the API at this fake. */
  env: Record<string, string>;
  /** What the next authorize/token requests do; tests mutate it, `reset()` restores defaults. */
  behaviour: FakeGoogleBehaviour;
  reset(): void;
  /** Every token request the fake refused, with the OAuth error it answered. */
  refusals: { error: string; description: string }[];
  /** Signs an ID token as the fake would (for tests that need one outside the flow). */
  signIdToken(
    claims: Record<string, unknown>,
    options?: { unknownKey?: boolean; ttlSeconds?: number },
  ): Promise<string>;
  close(): Promise<void>;
}

interface IssuedCode {
  clientId: string;
  redirectUri: string;
  challenge: string;
  nonce: string | null;
  expiresAt: number;
  used: boolean;
  behaviour: FakeGoogleBehaviour;
}

const AUTH_PATH = '/o/oauth2/v2/auth';
const TOKEN_PATH = '/token';
const JWKS_PATH = '/oauth2/v3/certs';

function defaultBehaviour(): FakeGoogleBehaviour {
  const id = randomBytes(6).toString('hex');
  return {
    deny: false,
    user: {
      sub: `10${BigInt(`0x${id}`).toString()}`,
      email: `google-${id}@example.test`,
      emailVerified: true,
      name: 'Test Person',
      picture: `https://lh3.example.test/${id}.png`,
    },
    idTokenTtlSeconds: 3600,
    codeTtlSeconds: 60,
    signWithUnknownKey: false,
  };
}

function s256(verifier: string): string {
  return createHash('sha256').update(verifier).digest('base64url');
}

function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

/**
 * A loopback OAuth 2.0 / OpenID Connect provider that follows Google's public contract:
 * authorization endpoint (auto-consent, or denial), token endpoint (client credentials by
 * Basic auth or form fields, redirect_uri, PKCE S256, single-use expiring codes) and a
 * JWKS endpoint; ID tokens are RS256-signed with a test key.
 */
export async function startFakeGoogle(options: { clientId?: string; clientSecret?: string } = {}): Promise<FakeGoogle> {
  const clientId = options.clientId ?? `fake-client-${randomBytes(4).toString('hex')}.apps.googleusercontent.com`;
  const clientSecret = options.clientSecret ?? `fake-secret-${randomBytes(12).toString('hex')}`;
  const kid = randomBytes(8).toString('hex');
  const signing = await generateKeyPair('RS256', { extractable: true });
  const unknown = await generateKeyPair('RS256');
  const publicJwk: JWK = { ...(await exportJWK(signing.publicKey)), kid, alg: 'RS256', use: 'sig' };
  const codes = new Map<string, IssuedCode>();
  const refusals: FakeGoogle['refusals'] = [];

  let issuer = '';
  const state = { behaviour: defaultBehaviour() };

  async function signIdToken(
    claims: Record<string, unknown>,
    opts: { unknownKey?: boolean; ttlSeconds?: number } = {},
  ): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const ttl = opts.ttlSeconds ?? 3600;
    const key: CryptoKey = opts.unknownKey ? unknown.privateKey : signing.privateKey;
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' })
      .setIssuedAt(Math.min(now, now + ttl - 60))
      .setExpirationTime(now + ttl)
      .sign(key);
  }

  function refuse(res: ServerResponse, status: number, error: string, description: string): void {
    refusals.push({ error, description });
    json(res, status, { error, error_description: description });
  }

  function authorize(url: URL, res: ServerResponse): void {
    const q = url.searchParams;
    const redirectUri = q.get('redirect_uri');
    if (q.get('client_id') !== clientId || !redirectUri) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end('Error 401: invalid_client');
      return;
    }
    const back = new URL(redirectUri);
    const appState = q.get('state');
    if (appState !== null) back.searchParams.set('state', appState);
    const behaviour = structuredClone(state.behaviour);
    const challenge = q.get('code_challenge');
    if (q.get('response_type') !== 'code' || !challenge || q.get('code_challenge_method') !== 'S256') {
      back.searchParams.set('error', 'invalid_request');
    } else if (behaviour.deny) {
      back.searchParams.set('error', 'access_denied');
    } else {
      const code = `4/${randomBytes(24).toString('base64url')}`;
      codes.set(code, {
        clientId,
        redirectUri,
        challenge,
        nonce: q.get('nonce'),
        used: false,
        behaviour,
        expiresAt: Date.now() + behaviour.codeTtlSeconds * 1000,
      });
      back.searchParams.set('code', code);
      back.searchParams.set('scope', q.get('scope') ?? '');
    }
    res.writeHead(302, { location: back.toString() });
    res.end();
  }

  async function token(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = new URLSearchParams(await readBody(req));
    let id = form.get('client_id');
    let secret = form.get('client_secret');
    const basic = req.headers.authorization?.match(/^Basic\s+(.+)$/i)?.[1];
    if (basic) {
      const decoded = Buffer.from(basic, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      id = decodeURIComponent(decoded.slice(0, colon));
      secret = decodeURIComponent(decoded.slice(colon + 1));
    }
    if (id !== clientId || !secret || !sameString(secret, clientSecret))
      return refuse(res, 401, 'invalid_client', 'The OAuth client was not found.');
    if (form.get('grant_type') !== 'authorization_code')
      return refuse(res, 400, 'unsupported_grant_type', 'Invalid grant_type.');
    const code = form.get('code') ?? '';
    const issued = codes.get(code);
    if (!issued) return refuse(res, 400, 'invalid_grant', 'Malformed auth code.');
    if (issued.used) return refuse(res, 400, 'invalid_grant', 'Bad Request: code already redeemed.');
    // A code is spent by its first redemption attempt, successful or not, as at Google.
    issued.used = true;
    if (Date.now() >= issued.expiresAt) return refuse(res, 400, 'invalid_grant', 'Bad Request: code expired.');
    if (form.get('redirect_uri') !== issued.redirectUri)
      return refuse(res, 400, 'redirect_uri_mismatch', 'Bad Request');
    const verifier = form.get('code_verifier');
    if (!verifier || !sameString(s256(verifier), issued.challenge))
      return refuse(res, 400, 'invalid_grant', 'Missing code verifier.');
    const b = issued.behaviour;
    const idToken = await signIdToken(
      {
        iss: b.issuer ?? issuer,
        aud: b.audience ?? clientId,
        azp: clientId,
        sub: b.user.sub,
        email: b.user.email,
        email_verified: b.user.emailVerified,
        ...(b.user.name !== undefined ? { name: b.user.name } : {}),
        ...(b.user.picture !== undefined ? { picture: b.user.picture } : {}),
        ...(issued.nonce ? { nonce: issued.nonce } : {}),
      },
      { unknownKey: b.signWithUnknownKey, ttlSeconds: b.idTokenTtlSeconds },
    );
    json(res, 200, {
      access_token: `ya29.${randomBytes(24).toString('base64url')}`,
      expires_in: 3599,
      token_type: 'Bearer',
      scope: 'openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile',
      id_token: idToken,
    });
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake-google');
    if (req.method === 'GET' && url.pathname === AUTH_PATH) return authorize(url, res);
    if (req.method === 'POST' && url.pathname === TOKEN_PATH) {
      token(req, res).catch((error: unknown) =>
        json(res, 500, { error: 'server_error', error_description: String(error) }),
      );
      return;
    }
    if (req.method === 'GET' && url.pathname === JWKS_PATH) return json(res, 200, { keys: [publicJwk] });
    json(res, 404, { error: 'not_found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  issuer = base;

  return {
    url: base,
    issuer,
    clientId,
    clientSecret,
    env: {
      GOOGLE_CLIENT_ID: clientId,
      GOOGLE_CLIENT_SECRET: clientSecret,
      GOOGLE_AUTH_URL: base + AUTH_PATH,
      GOOGLE_TOKEN_URL: base + TOKEN_PATH,
      GOOGLE_JWKS_URL: base + JWKS_PATH,
      GOOGLE_ISSUER: issuer,
    },
    get behaviour() {
      return state.behaviour;
    },
    set behaviour(value) {
      state.behaviour = value;
    },
    reset() {
      state.behaviour = defaultBehaviour();
    },
    refusals,
    signIdToken,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
