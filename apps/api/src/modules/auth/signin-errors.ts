import type { FastifyReply } from 'fastify';
import type { SignInFailure } from './google.js';

type PageReason = SignInFailure | 'rate_limited' | 'not_configured' | 'server_error';

const PAGES: Record<PageReason, { status: number; title: string; text: string }> = {
  access_denied: {
    status: 400,
    title: 'Sign-in cancelled',
    text: 'You did not give Pingvas Studio permission to use your Google account, so you are not signed in.',
  },
  invalid_state: {
    status: 400,
    title: 'Sign-in expired',
    text: 'This sign-in link was already used, came from another browser, or took longer than 10 minutes. Please start again.',
  },
  invalid_code: {
    status: 400,
    title: 'Sign-in expired',
    text: 'Google’s one-time sign-in code had expired or was already used. Please start again.',
  },
  invalid_token: {
    status: 400,
    title: 'Sign-in could not be verified',
    text: 'We could not verify Google’s answer, so you are not signed in. Please start again.',
  },
  unverified_email: {
    status: 403,
    title: 'E-mail address not verified',
    text: 'Your Google account’s e-mail address is not verified. Verify it with Google, then sign in again.',
  },
  account_conflict: {
    status: 409,
    title: 'Account already linked',
    text: 'This e-mail address belongs to a Pingvas Studio account linked to a different Google account.',
  },
  provider_refused: {
    status: 400,
    title: 'Google sign-in failed',
    text: 'Google did not complete the sign-in. Please start again.',
  },
  provider_error: {
    status: 502,
    title: 'Google sign-in failed',
    text: 'Google refused the sign-in. Please try again in a moment.',
  },
  provider_unavailable: {
    status: 502,
    title: 'Google is unreachable',
    text: 'We could not reach Google to finish signing you in. Please try again in a moment.',
  },
  rate_limited: {
    status: 429,
    title: 'Too many sign-in attempts',
    text: 'There were too many sign-in attempts from your network. Please wait a minute and try again.',
  },
  server_error: {
    status: 500,
    title: 'Something went wrong on our side',
    text: 'We could not finish signing you in. Please try again in a moment.',
  },
  not_configured: {
    status: 404,
    title: 'Google sign-in is not set up',
    text: 'This studio does not have Google sign-in configured.',
  },
};

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The page a browser lands on when Google sign-in fails: what happened, and a way to try
 * again. Rendered by the API (the callback URL is the API's), never a stack trace.
 */
export function sendSignInError(
  reply: FastifyReply,
  reason: PageReason,
  publicUrl: string,
  retryAfterSeconds?: number,
): FastifyReply {
  const page = PAGES[reason];
  const home = publicUrl.replace(/\/+$/, '');
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(page.title)} · Pingvas Studio</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:15vh auto;padding:0 1rem;color:#1d1d1f}a.button{display:inline-block;padding:.6rem 1.1rem;border-radius:.5rem;background:#1d1d1f;color:#fff;text-decoration:none}p.small{color:#666;font-size:.85rem}</style>
</head><body data-reason="${reason}">
<h1>${escape(page.title)}</h1>
<p>${escape(page.text)}</p>
<p><a class="button" href="/api/v1/oauth/google/login">Try again</a> &nbsp; <a href="${escape(home)}/">Back to Pingvas Studio</a></p>
<p class="small">Reason: ${reason}</p>
</body></html>`;
  if (retryAfterSeconds !== undefined) void reply.header('retry-after', String(retryAfterSeconds));
  return reply.code(page.status).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(html);
}
