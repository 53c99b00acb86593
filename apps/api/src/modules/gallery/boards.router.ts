import { router } from '../../trpc.js';

export const boardsRouter = router({});
