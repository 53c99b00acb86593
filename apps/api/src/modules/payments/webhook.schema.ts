import { z } from 'zod';

/**
 * The parts of Lemon Squeezy webhook bodies this studio reads (docs/lemon-squeezy.md). Unknown
 * fields pass; ids may come as numbers or numeric strings.
 */
const providerId = z.union([z.number().int(), z.string().regex(/^\d+$/)]).transform(Number);
const timestamp = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'not a timestamp').transform((s) => new Date(s));
const optionalTimestamp = timestamp.nullable().optional().transform((d) => d ?? null);

export const envelopeSchema = z.object({
  meta: z.object({
    event_name: z.string().min(1),
    custom_data: z.record(z.string(), z.unknown()).nullable().optional(),
  }),
  data: z.object({
    type: z.string(),
    id: z.union([z.string().min(1), z.number()]).transform(String),
    attributes: z.record(z.string(), z.unknown()),
  }),
});
export type WebhookEnvelope = z.infer<typeof envelopeSchema>;

export const subscriptionAttributes = z.object({
  customer_id: providerId.nullable().optional(),
  order_id: providerId.nullable().optional(),
  variant_id: providerId,
  user_email: z.string().optional(),
  status: z.string().min(1),
  cancelled: z.boolean().optional().default(false),
  renews_at: optionalTimestamp,
  ends_at: optionalTimestamp,
  urls: z.object({
    update_payment_method: z.string().nullable().optional(),
    customer_portal: z.string().nullable().optional(),
  }).nullable().optional(),
  updated_at: timestamp,
});
export type SubscriptionAttributes = z.infer<typeof subscriptionAttributes>;

export const orderAttributes = z.object({
  status: z.string().min(1),
  refunded: z.boolean().optional().default(false),
  user_email: z.string().optional(),
  first_order_item: z.object({ variant_id: providerId }),
  updated_at: timestamp,
});
export type OrderAttributes = z.infer<typeof orderAttributes>;

export const invoiceAttributes = z.object({
  subscription_id: providerId,
  billing_reason: z.string().min(1),
  status: z.string().optional(),
  updated_at: timestamp,
});
export type InvoiceAttributes = z.infer<typeof invoiceAttributes>;

export const SUBSCRIPTION_EVENTS = [
  'subscription_created', 'subscription_updated', 'subscription_cancelled', 'subscription_resumed', 'subscription_expired',
] as const;
export const INVOICE_EVENTS = ['subscription_payment_success', 'subscription_payment_failed', 'subscription_payment_recovered'] as const;
export const ORDER_EVENTS = ['order_created', 'order_refunded'] as const;

export type KnownEvent =
  | { kind: 'subscription'; name: (typeof SUBSCRIPTION_EVENTS)[number]; attributes: SubscriptionAttributes }
  | { kind: 'invoice'; name: (typeof INVOICE_EVENTS)[number]; attributes: InvoiceAttributes }
  | { kind: 'order'; name: (typeof ORDER_EVENTS)[number]; attributes: OrderAttributes }
  | { kind: 'other'; name: string };

const includes = <T extends string>(list: readonly T[], name: string): name is T => (list as readonly string[]).includes(name);

/** Reads the attributes a known event needs; a known event without them is malformed (400). */
export function classifyEvent(envelope: WebhookEnvelope): { ok: true; event: KnownEvent } | { ok: false; message: string } {
  const name = envelope.meta.event_name;
  const known = includes(SUBSCRIPTION_EVENTS, name) || includes(INVOICE_EVENTS, name) || includes(ORDER_EVENTS, name);
  if (known && !/^\d+$/.test(envelope.data.id)) return { ok: false, message: `data.id must be a numeric id, got ${envelope.data.id}` };
  const read = <S extends z.ZodTypeAny>(schema: S) => schema.safeParse(envelope.data.attributes);
  if (includes(SUBSCRIPTION_EVENTS, name)) {
    const r = read(subscriptionAttributes);
    return r.success ? { ok: true, event: { kind: 'subscription', name, attributes: r.data } } : { ok: false, message: r.error.message };
  }
  if (includes(INVOICE_EVENTS, name)) {
    const r = read(invoiceAttributes);
    return r.success ? { ok: true, event: { kind: 'invoice', name, attributes: r.data } } : { ok: false, message: r.error.message };
  }
  if (includes(ORDER_EVENTS, name)) {
    const r = read(orderAttributes);
    return r.success ? { ok: true, event: { kind: 'order', name, attributes: r.data } } : { ok: false, message: r.error.message };
  }
  return { ok: true, event: { kind: 'other', name } };
}
