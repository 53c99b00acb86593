import type { FailureCode, JobState } from './jobs.js';

/** What `generation.onJob` sends, in order; the first message is always `snapshot`. */
export type JobEvent =
  | {
      type: 'snapshot';
      jobId: string;
      status: JobState;
      progress: number;
      queuePosition: number | null;
      estimatedWaitSeconds: number | null;
      /** Running, but its model is still loading on the worker. */
      loadingModel?: boolean;
    }
  | { type: 'queued'; jobId: string; position: number; estimatedWaitSeconds: number }
  | { type: 'started'; jobId: string }
  /** The worker is loading the job's model before the first step. */
  | { type: 'loading-model'; jobId: string }
  | { type: 'progress'; jobId: string; percent: number; step: number; totalSteps: number }
  /**
   * The newest frame of a running job while it samples: a small WebP (fits in PREVIEW_SIDE) as a
   * data: URL, at most about one a second. Live only: never stored, not replayed in a snapshot.
   */
  | { type: 'preview'; jobId: string; step: number; width: number; height: number; dataUrl: string }
  | {
      type: 'completed';
      jobId: string;
      /** The first image (index 0), as before batches. */
      image: { id: string; width: number; height: number };
      /** Every image of the job, in index order. */
      images: { id: string; width: number; height: number }[];
      creditsCharged: number;
      balance: number;
    }
  | { type: 'failed'; jobId: string; code: FailureCode; message: string; refunded: number }
  | { type: 'cancelled'; jobId: string; refunded: number };

export type JobEventType = JobEvent['type'];
