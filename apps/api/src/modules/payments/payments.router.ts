import { router } from '../../trpc.js';

export const paymentsRouter = router({});
