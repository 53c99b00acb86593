import { z } from 'zod';

/**
 * The parts of Lemon Squeezy webhook bodies this studio reads. Real payloads are the
 * contract: ids come as numbers or numeric strings, amounts too, booleans may be null,
 * timestamps carry microseconds. Only the fields an effect needs are strict; every other one
 * falls back to null when it is absent or odd, so a signed, well-formed event is never
 * refused over a field we do not use.
 */
const providerId = z.union([z.number().int().nonnegative(), z.string().regex(/^\d+$/)]).transform(Number);
const amount = z
  .union([z.number(), z.string().regex(/^-?\d+(\.\d+)?$/)])
  .transform(Number)
  .nullable()
  .catch(null);
const flag = z
  .union([z.boolean(), z.literal(1), z.literal(0), z.enum(['true', 'false', '1', '0'])])
  .transform((v) => v === true || v === 1 || v === 'true' || v === '1')
  .nullable()
  .catch(null);
const text = z.string().nullable().catch(null);

/** A provider instant, kept to the microsecond: two events in one millisecond still order. */
export interface ProviderInstant {
  date: Date;
  /** `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC: compares as a string. */
  iso: string;
}

function toInstant(raw: string): ProviderInstant | null {
  const date = new Date(raw);
  if (Number.isNaN(date.getTime())) return null;
  const digits = /\.(\d+)/.exec(raw)?.[1] ?? '';
  const micros = digits.padEnd(6, '0').slice(3, 6);
  return { date, iso: `${date.toISOString().slice(0, 23)}${micros}Z` };
}

const instant = z.string().transform((raw, ctx) => {
  const parsed = toInstant(raw);
  if (!parsed) ctx.addIssue({ code: 'custom', message: 'not a timestamp' });
  return parsed ?? { date: new Date(0), iso: '' };
});
const optionalDate = z
  .string()
  .nullable()
  .optional()
  .catch(null)
  .transform((raw) => (raw ? (toInstant(raw)?.date ?? null) : null));

export const envelopeSchema = z.object({
  meta: z.object({
    event_name: z.string().min(1),
    custom_data: z.record(z.string(), z.unknown()).nullable().optional().catch(null),
    test_mode: flag.optional().transform((v) => v ?? false),
  }),
  data: z.object({
    type: z.string(),
    id: z.union([z.string().min(1), z.number()]).transform(String),
    attributes: z.record(z.string(), z.unknown()),
  }),
});
export type WebhookEnvelope = z.infer<typeof envelopeSchema>;

export const subscriptionAttributes = z.object({
  customer_id: providerId.nullable().optional().catch(null),
  order_id: providerId.nullable().optional().catch(null),
  variant_id: providerId,
  user_email: text.optional(),
  status: z.string().min(1),
  cancelled: flag.optional().transform((v) => v ?? false),
  renews_at: optionalDate,
  ends_at: optionalDate,
  urls: z
    .object({
      update_payment_method: text.optional(),
      customer_portal: text.optional(),
    })
    .nullable()
    .optional()
    .catch(null),
  updated_at: instant,
});
export type SubscriptionAttributes = z.infer<typeof subscriptionAttributes>;

export const orderAttributes = z.object({
  status: z.string().min(1),
  refunded: flag.optional(),
  /** Cents refunded so far (a partial refund is less than `total`). */
  refunded_amount: amount.optional(),
  total: amount.optional(),
  user_email: text.optional(),
  first_order_item: z.object({ variant_id: providerId }),
  updated_at: instant,
});
export type OrderAttributes = z.infer<typeof orderAttributes>;

export const invoiceAttributes = z.object({
  subscription_id: providerId,
  billing_reason: text.optional(),
  status: text.optional(),
  refunded_amount: amount.optional(),
  total: amount.optional(),
  user_email: text.optional(),
  updated_at: instant,
});
export type InvoiceAttributes = z.infer<typeof invoiceAttributes>;

export const SUBSCRIPTION_EVENTS = [
  'subscription_created',
  'subscription_updated',
  'subscription_cancelled',
  'subscription_resumed',
  'subscription_expired',
  'subscription_paused',
  'subscription_unpaused',
  'subscription_plan_changed',
] as const;
export const INVOICE_EVENTS = [
  'subscription_payment_success',
  'subscription_payment_failed',
  'subscription_payment_recovered',
  'subscription_payment_refunded',
] as const;
export const ORDER_EVENTS = ['order_created', 'order_refunded'] as const;

export type KnownEvent =
  | { kind: 'subscription'; name: (typeof SUBSCRIPTION_EVENTS)[number]; attributes: SubscriptionAttributes }
  | { kind: 'invoice'; name: (typeof INVOICE_EVENTS)[number]; attributes: InvoiceAttributes }
  | { kind: 'order'; name: (typeof ORDER_EVENTS)[number]; attributes: OrderAttributes }
  | { kind: 'other'; name: string };

const includes = <T extends string>(list: readonly T[], name: string): name is T =>
  (list as readonly string[]).includes(name);

/** Reads the attributes a known event needs; a known event without them is malformed (400). */
export function classifyEvent(
  envelope: WebhookEnvelope,
): { ok: true; event: KnownEvent } | { ok: false; message: string } {
  const name = envelope.meta.event_name;
  const known = includes(SUBSCRIPTION_EVENTS, name) || includes(INVOICE_EVENTS, name) || includes(ORDER_EVENTS, name);
  if (known && !/^\d+$/.test(envelope.data.id))
    return { ok: false, message: `data.id must be a numeric id, got ${envelope.data.id}` };
  const read = <S extends z.ZodTypeAny>(schema: S) => schema.safeParse(envelope.data.attributes);
  const problem = (error: z.ZodError) => error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
  if (includes(SUBSCRIPTION_EVENTS, name)) {
    const r = read(subscriptionAttributes);
    return r.success
      ? { ok: true, event: { kind: 'subscription', name, attributes: r.data } }
      : { ok: false, message: problem(r.error) };
  }
  if (includes(INVOICE_EVENTS, name)) {
    const r = read(invoiceAttributes);
    return r.success
      ? { ok: true, event: { kind: 'invoice', name, attributes: r.data } }
      : { ok: false, message: problem(r.error) };
  }
  if (includes(ORDER_EVENTS, name)) {
    const r = read(orderAttributes);
    return r.success
      ? { ok: true, event: { kind: 'order', name, attributes: r.data } }
      : { ok: false, message: problem(r.error) };
  }
  return { ok: true, event: { kind: 'other', name } };
}
