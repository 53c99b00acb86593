import { describe, expect, it } from 'vitest';
import type { JobEvent } from '@pingvas/core';
import {
  canCancel,
  cardFromView,
  describeJobCard,
  formatWait,
  initialJobCard,
  reduceJobEvent,
  unwrapJobEvent,
  type JobCardState,
} from './jobCard.js';

const jobId = '3f8a3b2e-0000-4000-8000-000000000001';
const run = (events: JobEvent[], start: JobCardState = initialJobCard({ jobId })) =>
  events.reduce(reduceJobEvent, start);

describe('job card reducer', () => {
  it('walks a job from the queue through progress to its image', () => {
    const queued = run([
      { type: 'snapshot', jobId, status: 'pending', progress: 0, queuePosition: 3, estimatedWaitSeconds: 42 },
    ]);
    expect(describeJobCard(queued)).toBe('#3 in queue · about 40 s');
    expect(canCancel(queued)).toBe(true);

    const running = run(
      [
        { type: 'started', jobId },
        { type: 'progress', jobId, percent: 40, step: 12, totalSteps: 30 },
      ],
      queued,
    );
    expect(running).toMatchObject({
      status: 'in_progress',
      percent: 40,
      step: 12,
      totalSteps: 30,
      queuePosition: null,
    });
    expect(describeJobCard(running)).toBe('Step 12 of 30');

    const done = reduceJobEvent(running, {
      type: 'completed',
      jobId,
      image: { id: 'img-1', width: 1024, height: 1024 },
      images: [{ id: 'img-1', width: 1024, height: 1024 }],
      creditsCharged: 45,
      balance: 9955,
    });
    expect(done).toMatchObject({ status: 'completed', percent: 100, image: { id: 'img-1' }, creditsCharged: 45 });
    expect(done.images.map((i) => i.id)).toEqual(['img-1']);
    expect(describeJobCard(done)).toBe('Done · 45 credits');
    expect(canCancel(done)).toBe(false);
  });

  it('says when a running job waits for its model to load, until its first step', () => {
    const loading = run([
      { type: 'started', jobId },
      { type: 'loading-model', jobId },
    ]);
    expect(loading).toMatchObject({ status: 'in_progress', loadingModel: true });
    expect(describeJobCard(loading)).toBe('Loading the model…');
    const stepping = reduceJobEvent(loading, { type: 'progress', jobId, percent: 10, step: 2, totalSteps: 20 });
    expect(describeJobCard(stepping)).toBe('Step 2 of 20');
    // A late loading event does not hide progress already shown.
    expect(describeJobCard(reduceJobEvent(stepping, { type: 'loading-model', jobId }))).toBe('Step 2 of 20');
    // A reconnecting card learns it from the snapshot; a retry back in the queue clears it.
    const resumed = run([
      {
        type: 'snapshot',
        jobId,
        status: 'in_progress',
        progress: 0,
        queuePosition: null,
        estimatedWaitSeconds: null,
        loadingModel: true,
      },
    ]);
    expect(describeJobCard(resumed)).toBe('Loading the model…');
    expect(reduceJobEvent(resumed, { type: 'queued', jobId, position: 0, estimatedWaitSeconds: 5 }).loadingModel).toBe(
      false,
    );
  });

  it('ignores events after the job finished and events of other jobs', () => {
    const done = run([
      { type: 'started', jobId },
      {
        type: 'completed',
        jobId,
        image: { id: 'img', width: 512, height: 512 },
        images: [{ id: 'img', width: 512, height: 512 }],
        creditsCharged: 3,
        balance: 10,
      },
    ]);
    expect(run([{ type: 'progress', jobId, percent: 50, step: 5, totalSteps: 10 }], done)).toBe(done);
    expect(
      run(
        [
          {
            type: 'snapshot',
            jobId,
            status: 'in_progress',
            progress: 20,
            queuePosition: null,
            estimatedWaitSeconds: null,
          },
        ],
        done,
      ),
    ).toBe(done);
    const fresh = initialJobCard({ jobId });
    expect(reduceJobEvent(fresh, { type: 'started', jobId: 'another' })).toBe(fresh);
  });

  it('never runs progress backwards within one attempt, but restarts it on a retry', () => {
    const at60 = run([
      { type: 'started', jobId },
      { type: 'progress', jobId, percent: 60, step: 18, totalSteps: 30 },
    ]);
    expect(run([{ type: 'progress', jobId, percent: 30, step: 9, totalSteps: 30 }], at60).percent).toBe(60);
    const retried = run([{ type: 'queued', jobId, position: 1, estimatedWaitSeconds: 3 }], at60);
    expect(retried).toMatchObject({ status: 'pending', percent: 0, step: null, queuePosition: 1 });
    expect(describeJobCard(retried)).toBe('Next in line · a few seconds');
  });

  it('says what failed and that the credits came back', () => {
    const failed = run([
      { type: 'failed', jobId, code: 'OOM', message: 'The GPU ran out of memory. Try a smaller size.', refunded: 90 },
    ]);
    expect(failed.status).toBe('failed');
    expect(describeJobCard(failed)).toBe('The GPU ran out of memory. Try a smaller size. 90 credits were refunded.');
    const cancelled = run([{ type: 'cancelled', jobId, refunded: 90 }]);
    expect(describeJobCard(cancelled)).toBe('Cancelled · 90 credits refunded');
  });

  it('formats waits in round numbers', () => {
    expect(formatWait(null)).toBeNull();
    expect(formatWait(2)).toBe('a few seconds');
    expect(formatWait(63)).toBe('about 65 s');
    expect(formatWait(400)).toBe('about 7 min');
  });
});

describe('onJob payloads', () => {
  it('accepts plain and tracked events', () => {
    const event = { type: 'started', jobId } as const;
    expect(unwrapJobEvent(event)).toBe(event);
    expect(unwrapJobEvent({ id: '7', data: event })).toBe(event);
    expect(unwrapJobEvent(null)).toBeNull();
    expect(unwrapJobEvent({ id: '7' })).toBeNull();
  });
});

describe('rebuilding a card from generation.get', () => {
  const view = { id: jobId, progress: 0, estimatedCredits: 90, chargedCredits: null, failure: null, image: null };

  it('recovers the image of a job that completed while nobody listened', () => {
    const blind = run([
      { type: 'snapshot', jobId, status: 'completed', progress: 100, queuePosition: null, estimatedWaitSeconds: null },
    ]);
    expect(blind.image).toBeNull();
    const seen = cardFromView(blind, {
      ...view,
      status: 'completed',
      chargedCredits: 45,
      image: { id: 'img', width: 1024, height: 1024 },
    });
    expect(seen).toMatchObject({ status: 'completed', image: { id: 'img' }, creditsCharged: 45 });
  });

  it('derives the refund of a failed or cancelled job and keeps running progress monotonic', () => {
    const failed = cardFromView(initialJobCard({ jobId }), {
      ...view,
      status: 'failed',
      failure: { code: 'CRASH', message: 'The engine crashed while generating.' },
    });
    expect(describeJobCard(failed)).toBe('The engine crashed while generating. 90 credits were refunded.');
    const cancelled = cardFromView(initialJobCard({ jobId }), { ...view, status: 'cancelled', chargedCredits: 4 });
    expect(cancelled.refunded).toBe(86);
    const at50 = run([
      { type: 'started', jobId },
      { type: 'progress', jobId, percent: 50, step: 15, totalSteps: 30 },
    ]);
    expect(cardFromView(at50, { ...view, status: 'in_progress', progress: 40 }).percent).toBe(50);
    expect(cardFromView(failed, { ...view, status: 'in_progress', progress: 40 })).toBe(failed);
  });

  it('shows the newest preview frame while the job runs, and drops it when the job completes or is retried', () => {
    const frame = (step: number) => ({
      type: 'preview' as const,
      jobId,
      step,
      width: 256,
      height: 256,
      dataUrl: `data:image/webp;base64,${step}`,
    });
    const running = run([{ type: 'started', jobId }, frame(4), frame(8)]);
    expect(running.preview).toEqual({ dataUrl: 'data:image/webp;base64,8', step: 8, width: 256, height: 256 });
    // A frame that arrives late does not replace a newer one.
    expect(run([frame(6)], running).preview?.step).toBe(8);
    expect(run([{ type: 'queued', jobId, position: 1, estimatedWaitSeconds: 3 }], running).preview).toBeNull();
    const images = [0, 1, 2, 3].map((i) => ({ id: `img-${i}`, width: 512, height: 512 }));
    const done = run(
      [{ type: 'completed', jobId, image: images[0]!, images, creditsCharged: 12, balance: 100 }],
      running,
    );
    expect(done.preview).toBeNull();
    expect(done.images.map((i) => i.id)).toEqual(['img-0', 'img-1', 'img-2', 'img-3']);
    // Frames after the end change nothing.
    expect(run([frame(20)], done)).toBe(done);
  });

  it('takes every image of a batch from the job view when no event said which', () => {
    const images = [0, 1].map((i) => ({ id: `img-${i}`, width: 512, height: 512 }));
    const seen = cardFromView(initialJobCard({ jobId, status: 'completed' }), {
      id: jobId,
      status: 'completed',
      progress: 100,
      estimatedCredits: 10,
      chargedCredits: 8,
      failure: null,
      image: images[0]!,
      images,
    });
    expect(seen.images.map((i) => i.id)).toEqual(['img-0', 'img-1']);
  });
});
