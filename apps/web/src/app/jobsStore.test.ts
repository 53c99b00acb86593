import { beforeEach, describe, expect, it } from 'vitest';
import { initialJobCard } from '../lib/jobCard.js';
import { jobsStore, type JobEntry } from './jobsStore.js';

const entry = (jobId: string, createdAt: number, status: JobEntry['card']['status'] = 'pending'): JobEntry => ({
  card: initialJobCard({ jobId, status }),
  prompt: jobId,
  model: 'sdxl',
  width: 1024,
  height: 1024,
  kind: 'txt2img',
  count: 1,
  estimatedCredits: 90,
  createdAt,
});

describe('the job cards of this tab', () => {
  beforeEach(() => {
    for (const e of jobsStore.snapshot()) jobsStore.remove(e.card.jobId);
  });

  it('keeps newest first, applies events, and merges server jobs without duplicates', () => {
    jobsStore.add(entry('a', 1));
    jobsStore.add(entry('b', 3));
    jobsStore.merge([entry('a', 1), entry('c', 2)]);
    expect(jobsStore.snapshot().map((e) => e.card.jobId)).toEqual(['b', 'c', 'a']);
    jobsStore.apply({ type: 'started', jobId: 'c' });
    expect(jobsStore.snapshot()[1]!.card.status).toBe('in_progress');
  });

  it('does not bring back cards the user put away', () => {
    jobsStore.add(entry('done', 5, 'completed'));
    jobsStore.add(entry('live', 6));
    jobsStore.clearFinished();
    expect(jobsStore.snapshot().map((e) => e.card.jobId)).toEqual(['live']);
    jobsStore.merge([entry('done', 5, 'completed')]);
    expect(jobsStore.snapshot().map((e) => e.card.jobId)).toEqual(['live']);
  });
});
