import { createHmac, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A Lemon Squeezy stand-in on loopback, built to the provider's public API and stricter than
 * the real thing: checkout creation, the subscription update (`PATCH /v1/subscriptions/{id}`)
 * and the subscription read check every header and the JSON:API body, and answer 2xx / 401 /
 * 404 / 422 / 429 as the provider does. It also builds and signs webhooks; the subscriptions it
 * sends webhooks for are the ones its API knows.
 */

export interface FakeLemonSqueezyOptions {
  apiKey: string;
  storeId: string;
  /** The variant ids the store sells; any other is refused with 422. */
  variantIds: number[];
  webhookSecret: string;
  /** Checkout creations allowed per minute before 429 (the provider's 300). */
  rateLimitPerMinute?: number;
}

export interface CreatedCheckout {
  id: string;
  url: string;
  storeId: string;
  variantId: string;
  email: string | undefined;
  custom: Record<string, unknown>;
  redirectUrl: string | undefined;
  testMode: boolean | undefined;
}

export interface PlanChange {
  subscriptionId: number;
  fromVariantId: number;
  variantId: number;
  invoiceImmediately: boolean | undefined;
  disableProrations: boolean | undefined;
}

export interface FakeLemonSqueezy {
  url: string;
  /** Subscription updates accepted (variant changes), in order. */
  planChanges: PlanChange[];
  /** Subscription reads answered (fresh update-card links). */
  subscriptionReads: number[];
  /** Checkouts created successfully, in order. */
  checkouts: CreatedCheckout[];
  /** Every refusal: status and the first error's detail. */
  refusals: { status: number; detail: string }[];
  /** The next checkout request gets this status (with a provider-like body), or hangs for `delayMs` first. */
  failNext(answer: { status: 401 | 422 | 429 | 500 } | { delayMs: number }): void;
  /** Signs and POSTs one webhook to `target`, as the provider does. */
  sendWebhook(
    target: string,
    event: WebhookEvent,
    options?: { signature?: string | null; body?: string },
  ): Promise<{ status: number; body: string }>;
  close(): Promise<void>;
}

const JSON_API = 'application/vnd.api+json';
const ALLOWED_ATTRIBUTES = new Set([
  'custom_price',
  'product_options',
  'checkout_options',
  'checkout_data',
  'preview',
  'test_mode',
  'expires_at',
]);
const SUBSCRIPTION_UPDATE_ATTRIBUTES = new Set([
  'variant_id',
  'invoice_immediately',
  'disable_prorations',
  'cancelled',
  'pause',
  'billing_anchor',
  'trial_ends_at',
]);

interface KnownSubscription {
  id: number;
  variantId: number;
  status: string;
  attributes: Record<string, unknown>;
}

interface ApiError {
  status: string;
  title: string;
  detail: string;
  source?: { pointer: string };
}

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly errors: ApiError[],
  ) {
    super(errors[0]?.detail);
  }
}

const unprocessable = (pointer: string, detail: string) =>
  new Refusal(422, [{ status: '422', title: 'Unprocessable Entity', detail, source: { pointer } }]);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function checkCheckoutBody(body: unknown, options: FakeLemonSqueezyOptions): Omit<CreatedCheckout, 'id' | 'url'> {
  if (!isObject(body) || !isObject(body.data)) throw unprocessable('/data', 'The data member is required.');
  const data = body.data;
  if (data.type !== 'checkouts') throw unprocessable('/data/type', 'The type must be "checkouts".');
  const attributes = data.attributes ?? {};
  if (!isObject(attributes)) throw unprocessable('/data/attributes', 'The attributes must be an object.');
  for (const key of Object.keys(attributes)) {
    if (!ALLOWED_ATTRIBUTES.has(key)) throw unprocessable(`/data/attributes/${key}`, `Unknown attribute ${key}.`);
  }
  const checkoutData = attributes.checkout_data ?? {};
  if (!isObject(checkoutData))
    throw unprocessable('/data/attributes/checkout_data', 'checkout_data must be an object.');
  const custom = checkoutData.custom ?? {};
  if (!isObject(custom)) throw unprocessable('/data/attributes/checkout_data/custom', 'custom must be an object.');
  for (const [key, value] of Object.entries(custom)) {
    if (!/^[a-z0-9_]+$/.test(key))
      throw unprocessable(
        `/data/attributes/checkout_data/custom/${key}`,
        `custom keys must be snake_case, got ${key}.`,
      );
    if (!['string', 'number', 'boolean'].includes(typeof value))
      throw unprocessable(`/data/attributes/checkout_data/custom/${key}`, 'custom values must be scalars.');
  }
  if (
    checkoutData.email !== undefined &&
    (typeof checkoutData.email !== 'string' || !checkoutData.email.includes('@'))
  ) {
    throw unprocessable('/data/attributes/checkout_data/email', 'The email must be a valid email address.');
  }
  const productOptions = attributes.product_options ?? {};
  if (!isObject(productOptions))
    throw unprocessable('/data/attributes/product_options', 'product_options must be an object.');
  if (
    productOptions.redirect_url !== undefined &&
    (typeof productOptions.redirect_url !== 'string' || !URL.canParse(productOptions.redirect_url))
  ) {
    throw unprocessable('/data/attributes/product_options/redirect_url', 'The redirect url must be a valid URL.');
  }
  if (attributes.test_mode !== undefined && typeof attributes.test_mode !== 'boolean') {
    throw unprocessable('/data/attributes/test_mode', 'test_mode must be a boolean.');
  }
  const relationships = data.relationships;
  if (!isObject(relationships))
    throw unprocessable('/data/relationships', 'The store and variant relationships are required.');
  const related = (name: 'store' | 'variant', type: string): string => {
    const rel = relationships[name];
    const linkage = isObject(rel) ? rel.data : undefined;
    if (!isObject(linkage) || linkage.type !== type)
      throw unprocessable(
        `/data/relationships/${name}`,
        `The ${name} relationship must be {"type":"${type}","id":"…"}.`,
      );
    if (typeof linkage.id !== 'string')
      throw unprocessable(`/data/relationships/${name}/data/id`, 'Resource ids must be strings.');
    return linkage.id;
  };
  const storeId = related('store', 'stores');
  const variantId = related('variant', 'variants');
  if (storeId !== options.storeId)
    throw unprocessable('/data/relationships/store/data/id', 'The store does not exist.');
  if (!options.variantIds.map(String).includes(variantId))
    throw unprocessable(
      '/data/relationships/variant/data/id',
      'The variant does not exist or does not belong to the store.',
    );
  return {
    storeId,
    variantId,
    custom,
    email: checkoutData.email as string | undefined,
    redirectUrl: productOptions.redirect_url as string | undefined,
    testMode: attributes.test_mode as boolean | undefined,
  };
}

export async function startFakeLemonSqueezy(options: FakeLemonSqueezyOptions): Promise<FakeLemonSqueezy> {
  const limit = options.rateLimitPerMinute ?? 300;
  const window: number[] = [];
  const queued: ({ status: 401 | 422 | 429 | 500 } | { delayMs: number })[] = [];

  const subscriptions = new Map<number, KnownSubscription>();
  const fake: FakeLemonSqueezy = {
    url: '',
    checkouts: [],
    refusals: [],
    planChanges: [],
    subscriptionReads: [],
    failNext(answer) {
      queued.push(answer);
    },
    sendWebhook: (target, event, opts) => {
      if (event.data.type === 'subscriptions') {
        const attributes = event.data.attributes;
        subscriptions.set(Number(event.data.id), {
          id: Number(event.data.id),
          variantId: Number(attributes.variant_id),
          status: String(attributes.status),
          attributes,
        });
      }
      return sendLemonSqueezyWebhook(target, options.webhookSecret, event, opts);
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };

  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'Content-Type': JSON_API });
    res.end(JSON.stringify(body));
  };

  /** A subscription as the API answers it: the urls are signed anew on every read (they expire within a day). */
  const subscriptionResource = (sub: KnownSubscription) => {
    const signature = createHmac('sha256', 'fake').update(`${sub.id}:${Date.now()}:${randomUUID()}`).digest('hex');
    return {
      jsonapi: { version: '1.0' },
      links: { self: `${fake.url}/v1/subscriptions/${sub.id}` },
      data: {
        type: 'subscriptions',
        id: String(sub.id),
        attributes: {
          ...sub.attributes,
          variant_id: sub.variantId,
          status: sub.status,
          urls: {
            update_payment_method: `https://pingvas-test.lemonsqueezy.com/subscription/${sub.id}/payment-details?expires=${Date.now() + 86_400_000}&signature=${signature}`,
            customer_portal: `https://pingvas-test.lemonsqueezy.com/billing?expires=${Date.now() + 86_400_000}&signature=${signature}`,
          },
        },
        links: { self: `${fake.url}/v1/subscriptions/${sub.id}` },
      },
    };
  };

  const knownSubscription = (id: string): KnownSubscription => {
    const sub = /^\d+$/.test(id) ? subscriptions.get(Number(id)) : undefined;
    if (!sub) throw new Refusal(404, [{ status: '404', title: 'Not Found', detail: `No subscription ${id}.` }]);
    return sub;
  };

  function updateSubscription(id: string, raw: string): unknown {
    const sub = knownSubscription(id);
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      throw new Refusal(400, [{ status: '400', title: 'Bad Request', detail: 'The body is not JSON.' }]);
    }
    if (!isObject(body) || !isObject(body.data)) throw unprocessable('/data', 'The data member is required.');
    if (body.data.type !== 'subscriptions') throw unprocessable('/data/type', 'The type must be "subscriptions".');
    if (body.data.id !== id) throw unprocessable('/data/id', 'The id must be the subscription id, as a string.');
    const attributes = body.data.attributes;
    if (!isObject(attributes)) throw unprocessable('/data/attributes', 'The attributes must be an object.');
    for (const key of Object.keys(attributes)) {
      if (!SUBSCRIPTION_UPDATE_ATTRIBUTES.has(key))
        throw unprocessable(`/data/attributes/${key}`, `Unknown attribute ${key}.`);
    }
    for (const key of ['invoice_immediately', 'disable_prorations'] as const) {
      if (attributes[key] !== undefined && typeof attributes[key] !== 'boolean')
        throw unprocessable(`/data/attributes/${key}`, `${key} must be a boolean.`);
    }
    if (sub.status === 'expired') throw unprocessable('/data', 'An expired subscription cannot be updated.');
    if (attributes.variant_id !== undefined) {
      if (typeof attributes.variant_id !== 'number' || !Number.isInteger(attributes.variant_id)) {
        throw unprocessable('/data/attributes/variant_id', 'The variant id must be an integer.');
      }
      if (!options.variantIds.includes(attributes.variant_id))
        throw unprocessable(
          '/data/attributes/variant_id',
          'The variant does not exist or does not belong to the store.',
        );
      fake.planChanges.push({
        subscriptionId: sub.id,
        fromVariantId: sub.variantId,
        variantId: attributes.variant_id,
        invoiceImmediately: attributes.invoice_immediately as boolean | undefined,
        disableProrations: attributes.disable_prorations as boolean | undefined,
      });
      sub.variantId = attributes.variant_id;
    }
    return subscriptionResource(sub);
  }

  async function handle(req: IncomingMessage, res: ServerResponse, raw: string): Promise<void> {
    const subscriptionPath = /^\/v1\/subscriptions\/([^/?]+)$/.exec(req.url ?? '');
    const known =
      (req.method === 'POST' && req.url === '/v1/checkouts') ||
      (subscriptionPath && ['PATCH', 'GET'].includes(req.method ?? ''));
    if (!known) {
      throw new Refusal(404, [
        { status: '404', title: 'Not Found', detail: `${req.method} ${req.url} is not part of this fake.` },
      ]);
    }
    if (req.headers.authorization !== `Bearer ${options.apiKey}`) {
      throw new Refusal(401, [{ status: '401', title: 'Unauthenticated.', detail: 'Unauthenticated.' }]);
    }
    if (req.headers.accept !== JSON_API) {
      throw new Refusal(406, [{ status: '406', title: 'Not Acceptable', detail: `Accept must be ${JSON_API}.` }]);
    }
    if (req.method !== 'GET' && req.headers['content-type'] !== JSON_API) {
      throw new Refusal(415, [
        { status: '415', title: 'Unsupported Media Type', detail: `Content-Type must be ${JSON_API}.` },
      ]);
    }
    if (subscriptionPath && req.method === 'GET') {
      const sub = knownSubscription(subscriptionPath[1]!);
      fake.subscriptionReads.push(sub.id);
      send(res, 200, subscriptionResource(sub));
      return;
    }
    if (subscriptionPath) {
      send(res, 200, updateSubscription(subscriptionPath[1]!, raw));
      return;
    }
    const next = queued.shift();
    if (next && 'delayMs' in next) await new Promise((r) => setTimeout(r, next.delayMs));
    if (next && 'status' in next) {
      const detail = {
        401: 'Unauthenticated.',
        422: 'The variant is not available for purchase.',
        429: 'Too Many Attempts.',
        500: 'Server Error',
      }[next.status];
      throw new Refusal(next.status, [
        {
          status: String(next.status),
          title: detail,
          detail,
          ...(next.status === 422 ? { source: { pointer: '/data/relationships/variant' } } : {}),
        },
      ]);
    }
    const now = Date.now();
    while (window.length && window[0]! < now - 60_000) window.shift();
    if (window.length >= limit)
      throw new Refusal(429, [{ status: '429', title: 'Too Many Attempts.', detail: 'Too Many Attempts.' }]);
    window.push(now);

    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      throw new Refusal(400, [{ status: '400', title: 'Bad Request', detail: 'The body is not JSON.' }]);
    }
    const checked = checkCheckoutBody(body, options);
    const id = randomUUID();
    const url = `https://pingvas-test.lemonsqueezy.com/checkout/custom/${id}?signature=${createHmac('sha256', 'fake').update(id).digest('hex')}`;
    fake.checkouts.push({ id, url, ...checked });
    const at = new Date(now).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
    send(res, 201, {
      jsonapi: { version: '1.0' },
      links: { self: `${fake.url}/v1/checkouts/${id}` },
      data: {
        type: 'checkouts',
        id,
        attributes: {
          store_id: Number(checked.storeId),
          variant_id: Number(checked.variantId),
          custom_price: null,
          product_options:
            (body as { data: { attributes?: Record<string, unknown> } }).data.attributes?.product_options ?? {},
          checkout_options: {},
          checkout_data: { email: checked.email ?? '', custom: checked.custom },
          preview: false,
          expires_at: null,
          created_at: at,
          updated_at: at,
          test_mode: checked.testMode ?? false,
          url,
        },
        relationships: {
          store: { links: { related: `${fake.url}/v1/checkouts/${id}/store` } },
          variant: { links: { related: `${fake.url}/v1/checkouts/${id}/variant` } },
        },
        links: { self: `${fake.url}/v1/checkouts/${id}` },
      },
    });
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks).toString('utf8')).catch((err: unknown) => {
        const refusal =
          err instanceof Refusal
            ? err
            : new Refusal(500, [{ status: '500', title: 'Server Error', detail: String(err) }]);
        fake.refusals.push({ status: refusal.status, detail: refusal.errors[0]?.detail ?? '' });
        if (!res.headersSent) send(res, refusal.status, { jsonapi: { version: '1.0' }, errors: refusal.errors });
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}

// ---------------------------------------------------------------------------------------
// Webhooks: builders for each object with the attributes docs/lemon-squeezy.md lists.

/** The provider's timestamp format: `2025-11-19T11:04:54.000000Z`. */
export const lsTime = (d: Date) => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

export interface WebhookEvent {
  name: string;
  data: { type: string; id: string; attributes: Record<string, unknown> };
  custom?: Record<string, unknown>;
}

export function webhookBody(event: WebhookEvent): string {
  return JSON.stringify({
    meta: {
      event_name: event.name,
      test_mode: true,
      webhook_id: 'f1e2d3c4-0000-4000-8000-000000000001',
      ...(event.custom ? { custom_data: event.custom } : {}),
    },
    data: event.data,
  });
}

export const signLemonSqueezyBody = (secret: string, body: string | Buffer) =>
  createHmac('sha256', secret).update(body).digest('hex');

/**
 * POSTs an event the way the provider does. `signature: null` leaves the header out; a string
 * replaces it; `body` sends other bytes than the event's (signed unless `signature` says).
 */
export async function sendLemonSqueezyWebhook(
  target: string,
  secret: string,
  event: WebhookEvent,
  options: { signature?: string | null; body?: string } = {},
): Promise<{ status: number; body: string }> {
  const body = options.body ?? webhookBody(event);
  const headers: Record<string, string> = { 'Content-Type': 'application/json', 'X-Event-Name': event.name };
  const signature = options.signature === undefined ? signLemonSqueezyBody(secret, body) : options.signature;
  if (signature !== null) headers['X-Signature'] = signature;
  const response = await fetch(target, { method: 'POST', headers, body });
  return { status: response.status, body: await response.text() };
}

export interface SubscriptionInput {
  id: number;
  customerId?: number;
  orderId?: number;
  variantId: number;
  email: string;
  status?: 'on_trial' | 'active' | 'paused' | 'past_due' | 'unpaid' | 'cancelled' | 'expired';
  cancelled?: boolean;
  renewsAt?: Date | null;
  endsAt?: Date | null;
  createdAt?: Date;
  updatedAt: Date;
}

export function subscriptionObject(s: SubscriptionInput): WebhookEvent['data'] {
  const created = s.createdAt ?? new Date(s.updatedAt.getTime() - 60_000);
  const status = s.status ?? 'active';
  return {
    type: 'subscriptions',
    id: String(s.id),
    attributes: {
      store_id: 1,
      customer_id: s.customerId ?? s.id + 7,
      order_id: s.orderId ?? s.id + 11,
      order_item_id: s.id + 12,
      product_id: 100,
      variant_id: s.variantId,
      product_name: 'Pingvas',
      variant_name: 'Monthly',
      user_name: s.email.split('@')[0],
      user_email: s.email,
      status,
      status_formatted: status,
      card_brand: 'visa',
      card_last_four: '4242',
      pause: null,
      cancelled: s.cancelled ?? (status === 'cancelled' || status === 'expired'),
      trial_ends_at: null,
      billing_anchor: created.getUTCDate(),
      first_subscription_item: {
        id: s.id + 13,
        subscription_id: s.id,
        price_id: 55,
        quantity: 1,
        created_at: lsTime(created),
        updated_at: lsTime(s.updatedAt),
      },
      urls: {
        update_payment_method: `https://pingvas-test.lemonsqueezy.com/subscription/${s.id}/payment-details?signature=abc`,
        customer_portal: `https://pingvas-test.lemonsqueezy.com/billing?signature=def`,
        customer_portal_update_subscription: `https://pingvas-test.lemonsqueezy.com/billing/${s.id}/update?signature=ghi`,
      },
      renews_at:
        s.renewsAt === undefined
          ? lsTime(new Date(created.getTime() + 30 * 86_400_000))
          : s.renewsAt && lsTime(s.renewsAt),
      ends_at: s.endsAt ? lsTime(s.endsAt) : null,
      created_at: lsTime(created),
      updated_at: lsTime(s.updatedAt),
      test_mode: true,
    },
  };
}

export interface OrderInput {
  id: number;
  variantId: number;
  email: string;
  totalCents: number;
  status?: 'pending' | 'failed' | 'paid' | 'refunded' | 'fraudulent';
  refunded?: boolean;
  updatedAt: Date;
}

export function orderObject(o: OrderInput): WebhookEvent['data'] {
  const status = o.status ?? 'paid';
  return {
    type: 'orders',
    id: String(o.id),
    attributes: {
      store_id: 1,
      customer_id: o.id + 7,
      identifier: randomUUID(),
      order_number: o.id % 100_000,
      user_name: o.email.split('@')[0],
      user_email: o.email,
      currency: 'USD',
      currency_rate: '1.0000',
      subtotal: o.totalCents,
      discount_total: 0,
      tax: 0,
      total: o.totalCents,
      subtotal_usd: o.totalCents,
      total_usd: o.totalCents,
      status,
      status_formatted: status,
      refunded: o.refunded ?? status === 'refunded',
      refunded_at: status === 'refunded' ? lsTime(o.updatedAt) : null,
      first_order_item: {
        id: o.id + 1,
        order_id: o.id,
        product_id: 100,
        variant_id: o.variantId,
        product_name: 'Pingvas',
        variant_name: 'Default',
        price: o.totalCents,
        quantity: 1,
        created_at: lsTime(o.updatedAt),
        updated_at: lsTime(o.updatedAt),
        test_mode: true,
      },
      urls: { receipt: `https://app.lemonsqueezy.com/my-orders/${o.id}?signature=abc` },
      created_at: lsTime(o.updatedAt),
      updated_at: lsTime(o.updatedAt),
      test_mode: true,
    },
  };
}

export interface InvoiceInput {
  id: number;
  subscriptionId: number;
  billingReason: 'initial' | 'renewal' | 'updated';
  status?: 'pending' | 'paid' | 'void' | 'refunded';
  email: string;
  totalCents: number;
  updatedAt: Date;
}

export function invoiceObject(i: InvoiceInput): WebhookEvent['data'] {
  const status = i.status ?? 'paid';
  return {
    type: 'subscription-invoices',
    id: String(i.id),
    attributes: {
      store_id: 1,
      subscription_id: i.subscriptionId,
      customer_id: i.subscriptionId + 7,
      user_name: i.email.split('@')[0],
      user_email: i.email,
      billing_reason: i.billingReason,
      card_brand: 'visa',
      card_last_four: '4242',
      currency: 'USD',
      currency_rate: '1.0000',
      status,
      status_formatted: status,
      refunded: status === 'refunded',
      refunded_at: null,
      subtotal: i.totalCents,
      discount_total: 0,
      tax: 0,
      total: i.totalCents,
      subtotal_usd: i.totalCents,
      total_usd: i.totalCents,
      urls: { invoice_url: `https://app.lemonsqueezy.com/my-orders/invoice/${i.id}?signature=abc` },
      created_at: lsTime(i.updatedAt),
      updated_at: lsTime(i.updatedAt),
      test_mode: true,
    },
  };
}
