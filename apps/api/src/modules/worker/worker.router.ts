import { router } from '../../trpc.js';

/** Mounted at /internal/trpc; workers import `type WorkerRouter`. */
export const workerRouter = router({});

export type WorkerRouter = typeof workerRouter;
