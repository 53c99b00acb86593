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
const errorAnswer = z.object({
  errors: z.array(z.object({ detail: z.string().optional(), title: z.string().optional() })).min(1),
});

const unavailable = (message: string) => new DomainError('PROVIDER_UNAVAILABLE', message, { provider: 'lemonsqueezy' });

interface ProviderAnswer {
  status: number;
  json: unknown;
  text: string;
}

/** One JSON:API call; a timeout or network failure becomes PROVIDER_UNAVAILABLE ("Nothing was charged"). */
async function callProvider(
  config: ApiConfig,
  logger: Logger,
  method: 'POST' | 'PATCH' | 'GET',
  path: string,
  body?: unknown,
): Promise<ProviderAnswer> {
  let response: Response;
  try {
    response = await fetch(new URL(path, config.LEMONSQUEEZY_API_URL), {
      method,
      headers: {
        Accept: 'application/vnd.api+json',
        ...(body === undefined ? {} : { 'Content-Type': 'application/vnd.api+json' }),
        Authorization: `Bearer ${config.LEMONSQUEEZY_API_KEY}`,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(config.LEMONSQUEEZY_TIMEOUT_MS),
    });
  } catch (err) {
    const timedOut = err instanceof Error && err.name === 'TimeoutError';
    logger.warn({ err, timedOut, method, path }, 'lemon squeezy request failed');
    throw unavailable(
      timedOut
        ? 'The payment provider did not answer in time. Nothing was charged; please try again in a minute.'
        : 'The payment provider cannot be reached right now. Nothing was charged; please try again in a minute.',
    );
  }
  const text = await response.text().catch(() => '');
  const json = (() => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return null;
    }
  })();
  return { status: response.status, json, text };
}

/** A refusal as the user reads it; `what` names the operation ("prepare this checkout"). */
function refusal(logger: Logger, answer: ProviderAnswer, what: string): DomainError {
  const detail = errorAnswer
    .safeParse(answer.json)
    .data?.errors.map((e) => e.detail ?? e.title)
    .filter(Boolean)
    .join('; ');
  logger.error({ status: answer.status, detail, what }, 'lemon squeezy refused a request');
  if (answer.status === 429) {
    return unavailable('The payment provider is busy right now. Nothing was charged; please try again in a minute.');
  }
  if (answer.status === 422 || answer.status === 400 || answer.status === 404) {
    return new DomainError(
      'BAD_REQUEST',
      `The payment provider could not ${what}${detail ? ` (${detail})` : ''}. Nothing was charged; please contact support if it persists.`,
      { provider: 'lemonsqueezy', status: answer.status },
    );
  }
  if (answer.status === 401 || answer.status === 403) {
    return unavailable(
      'Payments are temporarily unavailable (our provider account is misconfigured). Nothing was charged; we are on it.',
    );
  }
  return unavailable('The payment provider is having trouble right now. Nothing was charged; please try again later.');
}

function malformed(logger: Logger, answer: ProviderAnswer): DomainError {
  logger.error({ status: answer.status, body: answer.text.slice(0, 500) }, 'lemon squeezy answer malformed');
  return unavailable('The payment provider gave an unexpected answer. Nothing was charged; please try again later.');
}

/**
 * `POST /v1/checkouts` (JSON:API). Provider trouble becomes a DomainError the user can read;
 * the details go to the log, never the key.
 */
export async function createLemonSqueezyCheckout(
  config: ApiConfig,
  logger: Logger,
  input: { email: string; custom: CheckoutCustom; variantId: number; redirectUrl: string },
): Promise<{ id: string; url: string }> {
  const answer = await callProvider(config, logger, 'POST', '/v1/checkouts', {
    data: {
      type: 'checkouts',
      attributes: {
        checkout_data: { email: input.email, custom: input.custom },
        product_options: { redirect_url: input.redirectUrl },
        // Explicit development, or a staging deployment that takes test-mode payments; never production.
        test_mode: config.development || config.LEMONSQUEEZY_ACCEPT_TEST_MODE,
      },
      relationships: {
        store: { data: { type: 'stores', id: String(config.LEMONSQUEEZY_STORE_ID) } },
        variant: { data: { type: 'variants', id: String(input.variantId) } },
      },
    },
  });
  if (answer.status !== 201 && answer.status !== 200) throw refusal(logger, answer, 'prepare this checkout');
  const parsed = checkoutAnswer.safeParse(answer.json);
  if (!parsed.success) throw malformed(logger, answer);
  return { id: parsed.data.data.id, url: parsed.data.data.attributes.url };
}

const subscriptionAnswer = z.object({
  data: z.object({
    type: z.literal('subscriptions'),
    id: z.union([z.string(), z.number()]).transform(String),
    attributes: z.object({
      variant_id: z.union([z.number(), z.string().regex(/^\d+$/)]).transform(Number),
      urls: z
        .object({
          update_payment_method: z.string().nullable().optional(),
          customer_portal: z.string().nullable().optional(),
        })
        .nullable()
        .optional(),
    }),
  }),
});

/**
 * `PATCH /v1/subscriptions/{id}` with the new variant: the provider changes the plan of the
 * live subscription and prorates the money (no second subscription, no second checkout). The
 * effect on tier and credits arrives as the `subscription_updated` webhook.
 */
export async function changeLemonSqueezySubscriptionVariant(
  config: ApiConfig,
  logger: Logger,
  input: { subscriptionId: number; variantId: number },
): Promise<void> {
  const answer = await callProvider(config, logger, 'PATCH', `/v1/subscriptions/${input.subscriptionId}`, {
    data: { type: 'subscriptions', id: String(input.subscriptionId), attributes: { variant_id: input.variantId } },
  });
  if (answer.status !== 200) throw refusal(logger, answer, 'change this plan');
  if (!subscriptionAnswer.safeParse(answer.json).success) throw malformed(logger, answer);
}

/** `GET /v1/subscriptions/{id}`: its current urls (the update-card link is signed for about a day). */
export async function fetchLemonSqueezySubscriptionUrls(
  config: ApiConfig,
  logger: Logger,
  subscriptionId: number,
): Promise<{ updatePaymentMethod: string | null; customerPortal: string | null }> {
  const answer = await callProvider(config, logger, 'GET', `/v1/subscriptions/${subscriptionId}`);
  if (answer.status !== 200) throw refusal(logger, answer, 'open the card update');
  const parsed = subscriptionAnswer.safeParse(answer.json);
  if (!parsed.success) throw malformed(logger, answer);
  const urls = parsed.data.data.attributes.urls;
  return { updatePaymentMethod: urls?.update_payment_method ?? null, customerPortal: urls?.customer_portal ?? null };
}
