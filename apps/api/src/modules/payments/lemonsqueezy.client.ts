import { z } from 'zod';
import { DomainError } from '@pingvas/core';
import type { ApiConfig } from '../../config.js';
import type { Logger } from '../../infra/logger.js';

/** What rides in `checkout_data.custom` and comes back as `meta.custom_data` (snake_case: the provider's SDK rewrites camelCase). */
export type CheckoutCustom =
  | { user_id: string; kind: 'subscription'; tier: 'starter' | 'pro' }
  | { user_id: string; kind: 'credits'; pack: string };

const checkoutAnswer = z.object({
  data: z.object({ id: z.string().min(1), attributes: z.object({ url: z.url() }) }),
});
const errorAnswer = z.object({ errors: z.array(z.object({ detail: z.string().optional(), title: z.string().optional() })).min(1) });

const unavailable = (message: string) => new DomainError('PROVIDER_UNAVAILABLE', message, { provider: 'lemonsqueezy' });

/**
 * `POST /v1/checkouts` (JSON:API). Provider trouble becomes a DomainError the user can read;
 * the details go to the log, never the key.
 */
export async function createLemonSqueezyCheckout(
  config: ApiConfig,
  logger: Logger,
  input: { email: string; custom: CheckoutCustom; variantId: number; redirectUrl: string },
): Promise<{ id: string; url: string }> {
  const body = {
    data: {
      type: 'checkouts',
      attributes: {
        checkout_data: { email: input.email, custom: input.custom },
        product_options: { redirect_url: input.redirectUrl },
        test_mode: config.NODE_ENV !== 'production',
      },
      relationships: {
        store: { data: { type: 'stores', id: String(config.LEMONSQUEEZY_STORE_ID) } },
        variant: { data: { type: 'variants', id: String(input.variantId) } },
      },
    },
  };
  let response: Response;
  try {
    response = await fetch(new URL('/v1/checkouts', config.LEMONSQUEEZY_API_URL), {
      method: 'POST',
      headers: {
        Accept: 'application/vnd.api+json',
        'Content-Type': 'application/vnd.api+json',
        Authorization: `Bearer ${config.LEMONSQUEEZY_API_KEY}`,
      },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(config.LEMONSQUEEZY_TIMEOUT_MS),
    });
  } catch (err) {
    const timedOut = err instanceof Error && err.name === 'TimeoutError';
    logger.warn({ err, timedOut }, 'lemon squeezy checkout request failed');
    throw unavailable(timedOut
      ? 'The payment provider did not answer in time. Nothing was charged; please try again in a minute.'
      : 'The payment provider cannot be reached right now. Nothing was charged; please try again in a minute.');
  }
  const text = await response.text().catch(() => '');
  const json = (() => { try { return JSON.parse(text) as unknown; } catch { return null; } })();

  if (response.status === 201 || response.status === 200) {
    const parsed = checkoutAnswer.safeParse(json);
    if (parsed.success) return { id: parsed.data.data.id, url: parsed.data.data.attributes.url };
    logger.error({ status: response.status, body: text.slice(0, 500) }, 'lemon squeezy checkout answer malformed');
    throw unavailable('The payment provider gave an unexpected answer. Nothing was charged; please try again later.');
  }
  const detail = errorAnswer.safeParse(json).data?.errors.map((e) => e.detail ?? e.title).filter(Boolean).join('; ');
  logger.error({ status: response.status, detail }, 'lemon squeezy refused a checkout');
  if (response.status === 429) {
    throw unavailable('The payment provider is busy right now. Nothing was charged; please try again in a minute.');
  }
  if (response.status === 422 || response.status === 400) {
    throw new DomainError('BAD_REQUEST', `The payment provider could not prepare this checkout${detail ? ` (${detail})` : ''}. Nothing was charged; please contact support if it persists.`, { provider: 'lemonsqueezy', status: response.status });
  }
  if (response.status === 401 || response.status === 403) {
    throw unavailable('Payments are temporarily unavailable (our provider account is misconfigured). Nothing was charged; we are on it.');
  }
  throw unavailable('The payment provider is having trouble right now. Nothing was charged; please try again later.');
}
