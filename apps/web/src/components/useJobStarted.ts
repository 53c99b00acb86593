import { useQueryClient } from '@tanstack/react-query';
import type { JobState } from '@pingvas/core';
import { jobsStore } from '../app/jobsStore.js';
import { useTRPC } from '../app/trpc.js';
import { initialJobCard } from '../lib/jobCard.js';

/** What `generation.create` and `generation.upscale` answer. */
interface Started {
  jobId: string;
  status: JobState;
  kind: string;
  estimatedCredits: number;
  queuePosition: number | null;
  estimatedWaitSeconds: number | null;
}

/** What the job card shows before the first live event. */
interface StartedJob {
  prompt: string;
  model: string;
  width: number;
  height: number;
  count: number;
  /** Unknown for an upscale, which has no sampling steps. */
  totalSteps?: number;
}

/**
 * A job was just queued (from the studio form, an image page's "More like this", an upscale):
 * its card joins the studio's list and the balance shown everywhere is asked for again (the hold
 * lowered it).
 */
export function useJobStarted(): (started: Started, job: StartedJob) => void {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  return (started, job) => {
    jobsStore.add({
      card: initialJobCard({
        jobId: started.jobId,
        status: started.status,
        queuePosition: started.queuePosition,
        estimatedWaitSeconds: started.estimatedWaitSeconds,
        ...(job.totalSteps !== undefined ? { totalSteps: job.totalSteps } : {}),
      }),
      prompt: job.prompt,
      model: job.model,
      width: job.width,
      height: job.height,
      kind: started.kind,
      count: job.count,
      estimatedCredits: started.estimatedCredits,
      createdAt: Date.now(),
    });
    void queryClient.invalidateQueries(trpc.user.me.queryFilter());
    void queryClient.invalidateQueries(trpc.credits.pathFilter());
  };
}
