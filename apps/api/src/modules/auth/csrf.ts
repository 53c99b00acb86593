import type { onRequestHookHandler } from 'fastify';
import type { ApiConfig } from '../../config.js';
import { SESSION_COOKIE } from './session.js';

/** The web's tRPC client and fetch calls send it on every request. */
export const CSRF_HEADER = 'x-pingvas-csrf';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Cross-site request forgery guard, on top of the SameSite=Lax session cookie.
 *
 * A state-changing request (any method but GET/HEAD/OPTIONS) to /trpc/* or /api/v1/* that
 * carries the session cookie and no `Authorization: Bearer` must show it comes from our own
 * pages: either the `x-pingvas-csrf` header (a cross-site form cannot set custom headers,
 * and a cross-origin fetch with one needs a CORS preflight we never grant), or an `Origin`
 * equal to PUBLIC_URL's origin. Otherwise 403. Bearer requests are exempt (a browser never
 * attaches a bearer token on its own), and so is /api/v1/webhooks/* (server to server,
 * signed by the provider). Matching is on fastify's route pattern, so encoded or
 * odd-looking URLs cannot slip past; unknown routes have nothing to protect.
 */
export function csrfGuard(config: Pick<ApiConfig, 'PUBLIC_URL'>): onRequestHookHandler {
  const ownOrigin = new URL(config.PUBLIC_URL).origin;
  return async (req, reply) => {
    if (SAFE_METHODS.has(req.method)) return;
    const route = req.routeOptions.url ?? '';
    if (!route.startsWith('/trpc/') && !route.startsWith('/api/v1/')) return;
    if (route.startsWith('/api/v1/webhooks/')) return;
    if (/^Bearer\s+\S/i.test(req.headers.authorization ?? '')) return;
    if (!req.cookies[SESSION_COOKIE]) return;
    const header = req.headers[CSRF_HEADER];
    if (typeof header === 'string' && header.length > 0) return;
    if (req.headers.origin === ownOrigin) return;
    return reply
      .code(403)
      .header('cache-control', 'no-store')
      .send({
        error: 'csrf_rejected',
        message: `Cross-site request refused: send the ${CSRF_HEADER} header (or call from ${ownOrigin}).`,
      });
  };
}
