import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { DomainError } from '@pingvas/core';
import type { AppDeps } from '../../deps.js';
import { getMe, revokeSession, upsertUser } from './auth.service.js';
import { createGoogleSignIn, SignInError } from './google.js';
import { hitRateLimit } from '../../infra/rate-limit.js';
import { sessionFromToken, sessionTokenFrom } from '../../context.js';
import { endSession, isSecureOrigin, startSession } from './session.js';
import { sendSignInError } from './signin-errors.js';

const OAUTH_PATH = '/api/v1/oauth/google';
const STATE_COOKIE = 'pingvas_oauth_state';
const VERIFIER_COOKIE = 'pingvas_oauth_verifier';
/** How long the consent screen may take before the state cookies lapse. */
const OAUTH_COOKIE_SECONDS = 600;

const callbackQuery = z.object({
  code: z.string().min(1).max(2048).optional(),
  state: z.string().min(1).max(512).optional(),
  error: z.string().max(256).optional(),
});
const devLoginBody = z.object({ email: z.email().max(254) });

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Sign-in HTTP routes under /api/v1:
 * - GET  /api/v1/auth/config             → { google, devLogin }: which sign-in the web shows.
 * - GET  /api/v1/oauth/google/login      → 302 to Google (state + PKCE, both in short-lived cookies).
 * - GET  /api/v1/oauth/google/callback   → session cookie and 302 to PUBLIC_URL/studio, or an
 *                                           HTML page saying what went wrong with "Try again".
 * - POST /api/v1/auth/dev-login {email}  → session cookie + the user (only without Google, never in production).
 * - POST /api/v1/auth/logout             → revokes the presented session on the server and clears its cookie.
 */
export async function authRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const { config, db, logger } = deps;
  const google = config.googleEnabled ? createGoogleSignIn(config) : null;
  const devLoginEnabled = !config.googleEnabled && config.development;
  const publicUrl = config.PUBLIC_URL.replace(/\/+$/, '');
  const oauthCookie = { httpOnly: true, sameSite: 'lax', secure: isSecureOrigin(config), path: OAUTH_PATH } as const;

  async function limited(req: FastifyRequest, scope: string): Promise<number | null> {
    const verdict = await hitRateLimit(deps.redis, deps.keys, {
      scope,
      subject: req.ip,
      limit: config.SIGNIN_RATE_LIMIT,
      windowSeconds: config.SIGNIN_RATE_WINDOW_SECONDS,
    });
    if (verdict.allowed) return null;
    logger.warn({ reqId: req.id, ip: req.ip, scope }, 'sign-in rate limit hit');
    return verdict.retryAfterSeconds;
  }

  function clearOAuthCookies(reply: FastifyReply): void {
    reply.clearCookie(STATE_COOKIE, oauthCookie).clearCookie(VERIFIER_COOKIE, oauthCookie);
  }

  app.get('/api/v1/auth/config', async (_req, reply) => {
    return reply.header('cache-control', 'no-store').send({ google: config.googleEnabled, devLogin: devLoginEnabled });
  });

  app.get(`${OAUTH_PATH}/login`, async (req, reply) => {
    if (!google) return sendSignInError(reply, 'not_configured', publicUrl);
    const retryAfter = await limited(req, 'google-login');
    if (retryAfter !== null) return sendSignInError(reply, 'rate_limited', publicUrl, retryAfter);
    const { url, state, codeVerifier } = google.start();
    reply
      .setCookie(STATE_COOKIE, state, { ...oauthCookie, maxAge: OAUTH_COOKIE_SECONDS })
      .setCookie(VERIFIER_COOKIE, codeVerifier, { ...oauthCookie, maxAge: OAUTH_COOKIE_SECONDS });
    return reply.header('cache-control', 'no-store').redirect(url.toString(), 302);
  });

  app.get(`${OAUTH_PATH}/callback`, async (req, reply) => {
    if (!google) return sendSignInError(reply, 'not_configured', publicUrl);
    const retryAfter = await limited(req, 'google-callback');
    if (retryAfter !== null) return sendSignInError(reply, 'rate_limited', publicUrl, retryAfter);
    const expectedState = req.cookies[STATE_COOKIE];
    const codeVerifier = req.cookies[VERIFIER_COOKIE];
    // Each state is good for one attempt, whatever its outcome.
    clearOAuthCookies(reply);
    const fail = (error: SignInError) => {
      logger.info({ reqId: req.id, reason: error.reason, detail: error.message }, 'google sign-in failed');
      return sendSignInError(reply, error.reason, publicUrl);
    };

    const query = callbackQuery.safeParse(req.query);
    if (!query.success) return fail(new SignInError('invalid_state', 'malformed callback query'));
    const { code, state, error } = query.data;
    if (!state || !expectedState || !codeVerifier || !sameSecret(state, expectedState)) {
      return fail(
        new SignInError('invalid_state', expectedState ? 'state does not match the cookie' : 'no state cookie'),
      );
    }
    // What the browser brings back is a client request, not Google's answer: a malformed one is a 400, never a 502.
    if (error) {
      return fail(
        new SignInError(error === 'access_denied' ? 'access_denied' : 'provider_refused', `authorize: ${error}`),
      );
    }
    if (!code) return fail(new SignInError('provider_refused', 'callback without code'));

    try {
      const profile = await google.finish(code, codeVerifier);
      const user = await upsertUser(db, {
        email: profile.email,
        name: profile.name,
        avatarUrl: profile.picture,
        googleSub: profile.sub,
      });
      await startSession(reply, config, user);
      logger.info({ reqId: req.id, userId: user.id }, 'google sign-in');
      return reply.header('cache-control', 'no-store').redirect(`${publicUrl}/studio`, 302);
    } catch (caught) {
      if (caught instanceof SignInError) return fail(caught);
      if (caught instanceof DomainError && caught.code === 'CONFLICT')
        return fail(new SignInError('account_conflict', caught.message));
      logger.error({ reqId: req.id, err: caught }, 'google sign-in crashed');
      return sendSignInError(reply, 'server_error', publicUrl);
    }
  });

  app.post('/api/v1/auth/dev-login', async (req, reply) => {
    if (!devLoginEnabled)
      return reply.code(404).send({
        error: 'not_found',
        message: 'Dev sign-in is off: Google sign-in is configured or this is production.',
      });
    const retryAfter = await limited(req, 'dev-login');
    if (retryAfter !== null) {
      return reply
        .code(429)
        .header('retry-after', String(retryAfter))
        .send({ error: 'rate_limited', message: `Too many sign-in attempts; try again in ${retryAfter} s.` });
    }
    const body = devLoginBody.safeParse(req.body);
    if (!body.success)
      return reply
        .code(400)
        .send({ error: 'bad_request', message: 'Send { "email": "you@example.com" } with a valid e-mail address.' });
    const user = await upsertUser(db, { email: body.data.email });
    await startSession(reply, config, user);
    logger.info({ reqId: req.id, userId: user.id }, 'dev sign-in');
    return reply.header('cache-control', 'no-store').send(await getMe(db, user.id, config.PUBLIC_URL));
  });

  app.post('/api/v1/auth/logout', async (req, reply) => {
    const session = await sessionFromToken(deps, sessionTokenFrom(req.headers, req.cookies));
    if (session) await revokeSession(db, session.claims);
    endSession(reply, config);
    return reply.header('cache-control', 'no-store').send({ ok: true });
  });
}
