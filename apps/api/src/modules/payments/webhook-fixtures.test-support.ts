import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { signLemonSqueezyBody } from '@pingvas/testkit';
import { WEBHOOK_SECRET, type PaymentsHarness } from './webhook.test-support.js';

/**
 * Real-shaped Lemon Squeezy bodies (fixtures/*.json): every field the provider sends, as it
 * sends them — ids as numbers or numeric strings, `"refunded": null`, `\/`-escaped URLs,
 * microsecond timestamps. Scenarios change only what they need and keep the rest.
 */
type FixtureKind = 'subscription' | 'order' | 'invoice';

const raw = (kind: FixtureKind) => readFileSync(new URL(`./fixtures/${kind}.json`, import.meta.url), 'utf8');

export interface FixtureChange {
  event: string;
  vars: Record<string, string | number>;
  attributes?: Record<string, unknown>;
  /** No custom_data: a purchase made outside our checkout. */
  withoutCustomData?: boolean;
  custom?: Record<string, unknown>;
  meta?: Record<string, unknown>;
}

/** The body the provider would send: the fixture with the change applied, `/` escaped as PHP's JSON encoder does. */
export function fixtureBody(kind: FixtureKind, change: FixtureChange): string {
  const text = raw(kind).replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
    if (!(name in change.vars)) throw new Error(`fixture ${kind} needs ${name}`);
    return String(change.vars[name]);
  });
  const body = JSON.parse(text) as { meta: Record<string, unknown>; data: { attributes: Record<string, unknown> } };
  body.meta.event_name = change.event;
  Object.assign(body.meta, change.meta ?? {});
  if (change.withoutCustomData) delete body.meta.custom_data;
  else if (change.custom) body.meta.custom_data = change.custom;
  Object.assign(body.data.attributes, change.attributes ?? {});
  return JSON.stringify(body).replace(/\//g, '\\/');
}

/** POSTs exact bytes, signed, to the webhook route; answers the status. */
export async function postBody(
  h: PaymentsHarness,
  body: string,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(h.webhookUrl, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Signature': signLemonSqueezyBody(WEBHOOK_SECRET, body) },
    body,
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

export async function deliverFixture(
  h: PaymentsHarness,
  kind: FixtureKind,
  change: FixtureChange,
): Promise<Record<string, unknown>> {
  const body = fixtureBody(kind, change);
  const { status, json } = await postBody(h, body);
  expect(status, `${change.event}: ${JSON.stringify(json)}`).toBe(200);
  return json;
}

/** A provider timestamp `minutes` after a fixed start, with microseconds as the provider writes them. */
export const lsAt = (minutes: number, micros = 0) =>
  new Date(Date.parse('2026-11-12T16:34:45Z') + minutes * 60_000)
    .toISOString()
    .replace(/\.(\d{3})Z$/, `.$1${String(micros).padStart(3, '0')}Z`);
