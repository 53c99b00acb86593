import { describe, expect, it } from 'vitest';
import { announceJobChange, announceJobs } from './announcements.js';
import { initialJobCard, reduceJobEvent, type JobCardState } from './jobCard.js';

const PROMPT = 'A futuristic city';
const queued = (position: number | null) =>
  initialJobCard({ jobId: 'j1', status: 'pending', queuePosition: position, estimatedWaitSeconds: 10, totalSteps: 20 });
const running = (percent: number): JobCardState => ({
  ...queued(null),
  status: 'in_progress',
  percent,
  step: Math.round(percent / 5),
  totalSteps: 20,
  queuePosition: null,
});

describe('what the studio status region says', () => {
  it('a new job: queued, with its place in line', () => {
    expect(announceJobChange(undefined, queued(1), PROMPT)).toBe('Queued “A futuristic city”, next in line.');
    expect(announceJobChange(undefined, queued(4), PROMPT)).toBe('Queued “A futuristic city”, number 4 in the queue.');
    expect(announceJobChange(undefined, queued(null), PROMPT)).toBe('Queued “A futuristic city”.');
  });

  it('says when it starts, then only at 25, 50 and 75 percent, never twice for one milestone', () => {
    expect(announceJobChange(queued(1), running(0), PROMPT)).toBe('Generating “A futuristic city”.');
    expect(announceJobChange(running(0), running(10), PROMPT)).toBeNull();
    expect(announceJobChange(running(10), running(25), PROMPT)).toBe('“A futuristic city”: 25% done.');
    expect(announceJobChange(running(25), running(45), PROMPT)).toBeNull();
    // A jump past two milestones says the last one only.
    expect(announceJobChange(running(45), running(80), PROMPT)).toBe('“A futuristic city”: 75% done.');
    expect(announceJobChange(running(80), running(95), PROMPT)).toBeNull();
  });

  it('ready names the prompt; failed and cancelled say what came back', () => {
    const done = reduceJobEvent(running(90), {
      type: 'completed',
      jobId: 'j1',
      image: { id: 'i1', width: 512, height: 512 },
      images: [{ id: 'i1', width: 512, height: 512 }],
      creditsCharged: 12,
      balance: 100,
    });
    expect(announceJobChange(running(90), done, PROMPT)).toBe('Image ready: “A futuristic city”.');
    const batch = { ...done, images: [0, 1, 2, 3].map((n) => ({ id: `i${n}`, width: 512, height: 512 })) };
    expect(announceJobChange(running(90), batch, PROMPT)).toBe('4 images ready: “A futuristic city”.');
    const failed: JobCardState = {
      ...running(40),
      status: 'failed',
      refunded: 89,
      failure: { code: 'ENGINE_ERROR', message: 'The engine stopped.' },
    };
    expect(announceJobChange(running(40), failed, PROMPT)).toBe(
      'Generation failed: “A futuristic city”. 89 credits refunded.',
    );
    expect(announceJobChange(running(40), { ...failed, refunded: null }, PROMPT)).toBe(
      'Generation failed: “A futuristic city”. Its credits were refunded.',
    );
    const cancelled: JobCardState = { ...queued(2), status: 'cancelled', refunded: 1 };
    expect(announceJobChange(queued(2), cancelled, PROMPT)).toBe('Cancelled “A futuristic city”. 1 credit refunded.');
  });

  it('a retried job is announced as back in the queue', () => {
    expect(announceJobChange(running(60), queued(2), PROMPT)).toBe(
      'Retrying “A futuristic city”: Queued “A futuristic city”, number 2 in the queue.',
    );
  });

  it('shortens a long prompt', () => {
    const line = announceJobChange(undefined, queued(1), 'word '.repeat(60))!;
    expect(line.length).toBeLessThan(120);
    expect(line).toContain('…”');
  });

  it('over many jobs: only what changed, oldest first; jobs that were already over when first seen stay silent', () => {
    const a = queued(1);
    const b = { ...queued(2), jobId: 'j2' };
    const seen = new Map<string, JobCardState>([
      ['j1', a],
      ['j2', b],
    ]);
    expect(
      announceJobs(seen, [
        { card: b, prompt: 'second' },
        { card: a, prompt: 'first' },
      ]),
    ).toBeNull();
    const aStarted = { ...running(0) };
    const old = { ...queued(null), jobId: 'old', status: 'completed' as const };
    expect(
      announceJobs(seen, [
        { card: old, prompt: 'old' },
        { card: b, prompt: 'second' },
        { card: aStarted, prompt: 'first' },
      ]),
    ).toBe('Generating “first”.');
    const c = { ...queued(3), jobId: 'j3' };
    expect(
      announceJobs(seen, [
        { card: c, prompt: 'third' },
        { card: b, prompt: 'second' },
        { card: aStarted, prompt: 'first' },
      ]),
    ).toBe('Generating “first”. Queued “third”, number 3 in the queue.');
  });
});
