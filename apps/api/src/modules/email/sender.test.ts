import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { withSystem } from '@pingvas/db';
import { startSmtpSink, type SmtpSink } from '@pingvas/testkit';
import { createTestApp, type TestApp } from '../../test/harness.js';
import { queueEmail } from './outbox.js';
import { createMailer, deliverDueEmails, startEmailSender } from './sender.task.js';
import { renderEmail } from './templates.js';

let app: TestApp;
let sink: SmtpSink;
beforeAll(async () => {
  sink = await startSmtpSink();
  app = await createTestApp({ SMTP_URL: sink.url, MAIL_FROM: 'Pingvas Studio <studio@pingvas.test>' });
});
afterAll(async () => {
  await app.close();
  await sink.close();
});
beforeEach(async () => {
  await app.database.admin`delete from email_outbox`;
  sink.messages.length = 0;
});

let n = 0;
async function queue(count = 1): Promise<string[]> {
  const keys = Array.from({ length: count }, () => `test:${(n += 1)}`);
  await withSystem(app.deps.db, async (tx) => {
    for (const key of keys) {
      await queueEmail(tx, {
        userId: null,
        to: `${key.replace(':', '-')}@example.test`,
        dedupeKey: key,
        email: { template: 'payment_recovered', planName: 'Pro' },
      });
    }
  });
  return keys;
}

const rows = () =>
  app.database
    .admin`select dedupe_key, status, attempts, last_error, sent_at, next_attempt_at > now() + interval '20 seconds' as backed_off from email_outbox order by dedupe_key`;

describe('e-mail outbox sender (real SMTP on loopback)', () => {
  it('delivers a queued message once and marks it sent; a replayed cause queues nothing', async () => {
    const [key] = await queue();
    expect(
      await withSystem(app.deps.db, (tx) =>
        queueEmail(tx, {
          userId: null,
          to: 'x@example.test',
          dedupeKey: key!,
          email: { template: 'payment_recovered', planName: 'Pro' },
        }),
      ),
    ).toBe(false);
    const mailer = createMailer(app.deps);
    expect(await deliverDueEmails(app.deps, mailer)).toBe(1);
    expect(await deliverDueEmails(app.deps, mailer)).toBe(0);
    mailer.close();
    expect(sink.messages).toHaveLength(1);
    expect(sink.messages[0]).toMatchObject({ from: 'studio@pingvas.test', subject: 'Your Pro payment went through' });
    expect(sink.messages[0]!.raw).toContain('text/html');
    expect(await rows()).toMatchObject([{ status: 'sent', attempts: 1, last_error: null }]);
  });

  it('retries after the SMTP server refused once, with backoff, and then delivers exactly once', async () => {
    await queue();
    sink.refuseNext(1);
    const mailer = createMailer(app.deps);
    expect(await deliverDueEmails(app.deps, mailer)).toBe(0);
    expect(await rows()).toMatchObject([
      { status: 'pending', attempts: 1, backed_off: true, last_error: expect.stringMatching(/451/) },
    ]);
    // Backed off: not due yet.
    expect(await deliverDueEmails(app.deps, mailer)).toBe(0);
    await app.database.admin`update email_outbox set next_attempt_at = now()`;
    expect(await deliverDueEmails(app.deps, mailer)).toBe(1);
    expect(await deliverDueEmails(app.deps, mailer)).toBe(0);
    mailer.close();
    expect(sink.refused).toBe(1);
    expect(sink.messages).toHaveLength(1);
    expect(await rows()).toMatchObject([{ status: 'sent', attempts: 2 }]);
  });

  it('several replicas draining at once send every message exactly once', async () => {
    await queue(40);
    const mailers = [createMailer(app.deps), createMailer(app.deps), createMailer(app.deps)];
    const drain = async (m: (typeof mailers)[number]) => {
      while ((await deliverDueEmails(app.deps, m, { limit: 3 })) > 0) {
        /* more may be due */
      }
    };
    await Promise.all(mailers.map(drain));
    mailers.forEach((m) => m.close());
    const ids = sink.messages.map((m) => m.messageId);
    expect(ids).toHaveLength(40);
    expect(new Set(ids).size).toBe(40);
    expect((await rows()).every((r) => r.status === 'sent' && r.attempts === 1)).toBe(true);
  });

  it('takes over a claim whose replica died, but never a live claim', async () => {
    const [dead, live] = await queue(2);
    await app.database
      .admin`update email_outbox set status = 'sending', attempts = 1, locked_until = now() - interval '1 second' where dedupe_key = ${dead!}`;
    await app.database
      .admin`update email_outbox set status = 'sending', attempts = 1, locked_until = now() + interval '1 hour' where dedupe_key = ${live!}`;
    const mailer = createMailer(app.deps);
    expect(await deliverDueEmails(app.deps, mailer)).toBe(1);
    mailer.close();
    expect(await rows()).toMatchObject([
      { dedupe_key: dead, status: 'sent', attempts: 2 },
      { dedupe_key: live, status: 'sending' },
    ]);
  });

  it('gives up after 8 attempts and marks the message failed', async () => {
    await queue();
    await app.database.admin`update email_outbox set attempts = 7`;
    sink.refuseNext(1);
    const mailer = createMailer(app.deps);
    expect(await deliverDueEmails(app.deps, mailer, { retryBaseSeconds: 0 })).toBe(0);
    mailer.close();
    expect(await rows()).toMatchObject([{ status: 'failed', attempts: 8 }]);
  });

  it('the background loop delivers what is queued and stops cleanly', async () => {
    const task = startEmailSender({ ...app.deps, config: { ...app.deps.config, EMAIL_POLL_INTERVAL_MS: 20 } });
    try {
      await queue(3);
      await vi.waitFor(() => expect(sink.messages).toHaveLength(3), { timeout: 10_000, interval: 20 });
    } finally {
      await task.stop();
    }
    expect((await rows()).every((r) => r.status === 'sent')).toBe(true);
  });

  it('without SMTP_URL writes each message as an .eml file under MAIL_DIR', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pingvas-mail-'));
    try {
      await queue();
      const deps = { ...app.deps, config: { ...app.deps.config, SMTP_URL: undefined, MAIL_DIR: dir } };
      const mailer = createMailer(deps);
      expect(await deliverDueEmails(deps, mailer)).toBe(1);
      mailer.close();
      const files = await readdir(dir);
      expect(files).toHaveLength(1);
      expect(files[0]).toMatch(/\.eml$/);
      const eml = await readFile(join(dir, files[0]!), 'utf8');
      expect(eml).toMatch(/^Subject: Your Pro payment went through$/m);
      expect(sink.messages).toHaveLength(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('e-mail templates', () => {
  it('each has a subject, a text and an HTML part, with links and escaped input', () => {
    const later = renderEmail({
      template: 'payment_failed_later',
      planName: 'Pro',
      failedCount: 2,
      appUrl: 'https://app.test?a=1&b=2',
    });
    expect(later.text).toContain('Please update your card');
    // Our billing page, which fetches a fresh update-card link: the provider's own expires within a day.
    expect(later.text).toContain('https://app.test?a=1&b=2/billing?update-card=1');
    expect(later.html).toContain('href="https://app.test?a=1&amp;b=2/billing?update-card=1"');
    expect(
      renderEmail({ template: 'payment_failed_first', planName: 'Pro', appUrl: 'https://app.test' }).text,
    ).toContain("we'll retry");
    expect(
      renderEmail({ template: 'welcome', planName: '<Pro>', monthlyCredits: 10_000, appUrl: 'https://app.test' }).html,
    ).toContain('&lt;Pro&gt;');
    expect(renderEmail({ template: 'credits_added', credits: 5000, appUrl: 'https://app.test' }).subject).toBe(
      '5,000 credits added to your account',
    );
    expect(
      renderEmail({ template: 'subscription_cancelled', planName: 'Starter', appUrl: 'https://app.test' }).text,
    ).toContain('Credits you bought in packs stay yours');
  });
});
