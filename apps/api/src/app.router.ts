import { router } from './trpc.js';
import { userRouter } from './modules/user/user.router.js';
import { creditsRouter } from './modules/credits/credits.router.js';
import { paymentsRouter } from './modules/payments/payments.router.js';
import { generationRouter } from './modules/generation/generation.router.js';
import { galleryRouter } from './modules/gallery/gallery.router.js';
import { boardsRouter } from './modules/gallery/boards.router.js';
import { uploadsRouter } from './modules/uploads/uploads.router.js';

/** Mounted at /trpc; the web imports `type AppRouter`. */
export const appRouter = router({
  user: userRouter,
  credits: creditsRouter,
  payments: paymentsRouter,
  generation: generationRouter,
  gallery: galleryRouter,
  boards: boardsRouter,
  uploads: uploadsRouter,
});

export type AppRouter = typeof appRouter;
export type { WorkerRouter } from './modules/worker/worker.router.js';
