import type { JobCardState } from './jobCard.js';

/**
 * What the studio's status region says as jobs move. A screen reader hears a job being
 * queued (with its place), its progress at a few milestones (not every step: that would
 * drown everything else out), and how it ended. Pure, so it is tested without a browser.
 */

export const PROGRESS_MILESTONES = [25, 50, 75] as const;

const PROMPT_CHARS = 80;

function quote(prompt: string): string {
  const text = prompt.trim().replace(/\s+/g, ' ');
  return `“${text.length > PROMPT_CHARS ? `${text.slice(0, PROMPT_CHARS - 1)}…` : text}”`;
}

function credits(amount: number): string {
  return `${amount.toLocaleString('en-US')} ${amount === 1 ? 'credit' : 'credits'}`;
}

function queued(card: JobCardState, prompt: string): string {
  if (card.queuePosition === null) return `Queued ${quote(prompt)}.`;
  const place = card.queuePosition <= 1 ? 'next in line' : `number ${card.queuePosition} in the queue`;
  return `Queued ${quote(prompt)}, ${place}.`;
}

/** The sentence for one job's change from `before` (undefined: just added) to `after`, or null. */
export function announceJobChange(
  before: JobCardState | undefined,
  after: JobCardState,
  prompt: string,
): string | null {
  if (before === undefined) {
    if (after.status === 'pending') return queued(after, prompt);
    if (after.status === 'in_progress') return `Generating ${quote(prompt)}.`;
    return null;
  }
  if (before.status !== after.status) {
    switch (after.status) {
      case 'pending':
        return before.status === 'in_progress'
          ? `Retrying ${quote(prompt)}: ${queued(after, prompt)}`
          : queued(after, prompt);
      case 'in_progress':
        return `Generating ${quote(prompt)}.`;
      case 'completed':
        return after.images.length > 1
          ? `${after.images.length} images ready: ${quote(prompt)}.`
          : `Image ready: ${quote(prompt)}.`;
      case 'failed':
        return `Generation failed: ${quote(prompt)}. ${after.refunded ? `${credits(after.refunded)} refunded.` : 'Its credits were refunded.'}`;
      case 'cancelled':
        return `Cancelled ${quote(prompt)}.${after.refunded ? ` ${credits(after.refunded)} refunded.` : ''}`;
    }
  }
  if (after.status === 'in_progress') {
    const crossed = PROGRESS_MILESTONES.filter((m) => before.percent < m && after.percent >= m);
    if (crossed.length > 0) return `${quote(prompt)}: ${crossed[crossed.length - 1]}% done.`;
  }
  return null;
}

export interface AnnouncedJob {
  card: JobCardState;
  prompt: string;
}

/**
 * One message for everything that changed since `seen` (the cards as last announced),
 * oldest job first; null when nothing is worth saying. Jobs absent from `seen` count as new.
 */
export function announceJobs(seen: ReadonlyMap<string, JobCardState>, jobs: readonly AnnouncedJob[]): string | null {
  const lines: string[] = [];
  for (const job of [...jobs].reverse()) {
    const line = announceJobChange(seen.get(job.card.jobId), job.card, job.prompt);
    if (line) lines.push(line);
  }
  return lines.length > 0 ? lines.join(' ') : null;
}
