import type { ClaimedJob, EngineJob } from '@pingvas/core';

type Job = ClaimedJob['job'];

/** What the engine runs for a claimed job: core's EngineJob, the claim's fields by kind. */
export function engineJobOf(job: Job): EngineJob {
  switch (job.kind) {
    case 'txt2img':
      return { kind: 'txt2img', params: job.params, count: job.count };
    case 'img2img':
    case 'inpaint':
      return { kind: job.kind, params: job.params, count: job.count, strength: strengthOf(job) };
    case 'upscale':
      // The claim gives an upscale the source's own parameters: their size is the source's.
      return {
        kind: 'upscale',
        scale: upscaleOf(job).scale,
        source: { width: job.params.width, height: job.params.height },
      };
  }
}

/** The size of every image the job delivers: the job's own, or an upscale's target size. */
export function deliveredSize(job: Job): { width: number; height: number } {
  if (job.kind === 'upscale') {
    const { width, height } = upscaleOf(job);
    return { width, height };
  }
  return { width: job.params.width, height: job.params.height };
}

function strengthOf(job: Job): number {
  if (job.strength === undefined) throw new Error(`the API sent a ${job.kind} job without strength`);
  return job.strength;
}

function upscaleOf(job: Job): NonNullable<Job['upscale']> {
  if (!job.upscale) throw new Error('the API sent an upscale job without its upscale size');
  return job.upscale;
}
