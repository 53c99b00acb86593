import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { sql } from 'drizzle-orm';
import { withSystem } from '@pingvas/db';
import type { BackgroundTask } from '../../infra/loop.js';
import type { AppDeps } from '../../deps.js';
import { startLoop } from '../../infra/loop.js';

/** A claimed outbox row: what it takes to build and send the message. */
export interface OutboxMessage {
  id: string;
  to: string;
  subject: string;
  text: string;
  html: string;
  attempts: number;
  /** The claim's fence: only the claimer that set this lock may settle the row. */
  lockedUntil: string;
}

export interface Mailer {
  send(message: OutboxMessage): Promise<void>;
  close(): void;
}

/** Seconds a claim lasts. SMTP timeouts below stay well inside it, so a live claim is never stolen. */
const CLAIM_SECONDS = 120;
const SMTP_TIMEOUT_MS = 30_000;
const MAX_ATTEMPTS = 8;
const MAX_BACKOFF_SECONDS = 3600;

function envelope(from: string, m: OutboxMessage) {
  // A stable Message-ID: if a crash between "sent" and "marked sent" ever causes a resend,
  // mail systems see the same message and can drop the copy.
  return { from, to: m.to, subject: m.subject, text: m.text, html: m.html, messageId: `<${m.id}@pingvas.studio>` };
}

/**
 * SMTP when SMTP_URL is set; otherwise (development) each message becomes an .eml file under
 * MAIL_DIR and one log line.
 */
export function createMailer(deps: AppDeps): Mailer {
  const { config, logger } = deps;
  if (config.SMTP_URL) {
    const transport = nodemailer.createTransport({
      url: config.SMTP_URL,
      pool: true,
      maxConnections: 2,
      connectionTimeout: SMTP_TIMEOUT_MS,
      greetingTimeout: SMTP_TIMEOUT_MS,
      socketTimeout: SMTP_TIMEOUT_MS,
    });
    return {
      async send(m) {
        await transport.sendMail(envelope(config.MAIL_FROM, m));
      },
      close: () => transport.close(),
    };
  }
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
  return {
    async send(m) {
      const info = await transport.sendMail(envelope(config.MAIL_FROM, m));
      await mkdir(config.MAIL_DIR, { recursive: true });
      const file = join(config.MAIL_DIR, `${m.id}.eml`);
      await writeFile(file, info.message as Buffer);
      logger.info({ to: m.to, subject: m.subject, file }, 'e-mail written (no SMTP_URL)');
    },
    close: () => transport.close(),
  };
}

/**
 * Claims up to `limit` due rows for this replica. SKIP LOCKED lets several replicas claim at
 * once without waiting on or taking each other's rows; a claim whose holder died (lock
 * expired while `sending`) is due again.
 */
async function claimDue(deps: AppDeps, limit: number): Promise<OutboxMessage[]> {
  const rows = await withSystem(deps.db, (tx) =>
    tx.execute<{
      id: string;
      to_address: string;
      subject: string;
      text_body: string;
      html_body: string;
      attempts: number;
      locked_until: string;
    }>(sql`
    update email_outbox set status = 'sending', attempts = attempts + 1,
           locked_until = date_trunc('milliseconds', clock_timestamp()) + make_interval(secs => ${CLAIM_SECONDS})
    where id in (
      select id from email_outbox
      where (status = 'pending' and next_attempt_at <= now()) or (status = 'sending' and locked_until < now())
      order by next_attempt_at
      limit ${limit}
      for update skip locked)
    returning id, to_address, subject, text_body, html_body, attempts, locked_until::text`),
  );
  return rows.map((r) => ({
    id: r.id,
    to: r.to_address,
    subject: r.subject,
    text: r.text_body,
    html: r.html_body,
    attempts: r.attempts,
    lockedUntil: r.locked_until,
  }));
}

/**
 * Sends what is due and settles each row: `sent` after success (never picked again), or back
 * to `pending` with exponential backoff, or `failed` after MAX_ATTEMPTS. Returns how many
 * were sent. Safe to run on every replica at once.
 */
export async function deliverDueEmails(
  deps: AppDeps,
  mailer: Mailer,
  options: { limit?: number; retryBaseSeconds?: number } = {},
): Promise<number> {
  const retryBase = options.retryBaseSeconds ?? deps.config.EMAIL_RETRY_BASE_SECONDS;
  const claimed = await claimDue(deps, options.limit ?? 20);
  let sent = 0;
  for (const m of claimed) {
    try {
      await mailer.send(m);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const delay = Math.min(retryBase * 2 ** (m.attempts - 1), MAX_BACKOFF_SECONDS);
      const giveUp = m.attempts >= MAX_ATTEMPTS;
      await withSystem(deps.db, (tx) =>
        tx.execute(sql`
        update email_outbox set status = ${giveUp ? 'failed' : 'pending'}, locked_until = null, last_error = ${message.slice(0, 1000)},
               next_attempt_at = now() + make_interval(secs => ${delay})
        where id = ${m.id} and status = 'sending' and locked_until = ${m.lockedUntil}::timestamptz`),
      );
      deps.logger.warn({ outboxId: m.id, attempts: m.attempts, giveUp, err: message }, 'e-mail delivery failed');
      continue;
    }
    await withSystem(deps.db, (tx) =>
      tx.execute(sql`
      update email_outbox set status = 'sent', sent_at = now(), locked_until = null, last_error = null
      where id = ${m.id} and status = 'sending' and locked_until = ${m.lockedUntil}::timestamptz`),
    );
    sent += 1;
  }
  return sent;
}

/** The outbox sender loop of one API replica. */
export function startEmailSender(deps: AppDeps): BackgroundTask {
  const mailer = createMailer(deps);
  const loop = startLoop({
    name: 'email-sender',
    intervalMs: deps.config.EMAIL_POLL_INTERVAL_MS,
    logger: deps.logger,
    async tick() {
      while ((await deliverDueEmails(deps, mailer)) > 0) {
        /* drain what is due */
      }
    },
  });
  return {
    name: loop.name,
    async stop() {
      await loop.stop();
      mailer.close();
    },
  };
}
