import { schema, type Tx } from '@pingvas/db';
import { renderEmail, type EmailInput } from './templates.js';

/**
 * Queues an e-mail inside the caller's transaction, so it exists exactly when the change it
 * announces commits. The dedupe key makes a replayed cause queue nothing more. Returns
 * whether a row was written.
 */
export async function queueEmail(
  tx: Tx,
  input: { userId: string | null; to: string; dedupeKey: string; email: EmailInput },
): Promise<boolean> {
  const rendered = renderEmail(input.email);
  const rows = await tx
    .insert(schema.emailOutbox)
    .values({
      userId: input.userId,
      dedupeKey: input.dedupeKey,
      toAddress: input.to,
      template: rendered.template,
      subject: rendered.subject,
      textBody: rendered.text,
      htmlBody: rendered.html,
    })
    .onConflictDoNothing({ target: schema.emailOutbox.dedupeKey })
    .returning({ id: schema.emailOutbox.id });
  return rows.length > 0;
}
