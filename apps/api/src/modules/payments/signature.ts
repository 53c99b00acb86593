import { createHmac, timingSafeEqual } from 'node:crypto';

/** Lemon Squeezy's `X-Signature`: lowercase hex HMAC-SHA256 of the exact body bytes. */
export function signWebhookBody(secret: string, body: Buffer | string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

/** Constant-time check of a presented signature; lengths are compared first (timingSafeEqual needs equal lengths). */
export function isValidWebhookSignature(secret: string, body: Buffer, presented: string | undefined): boolean {
  if (!presented) return false;
  const expected = Buffer.from(signWebhookBody(secret, body), 'utf8');
  const given = Buffer.from(presented, 'utf8');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
