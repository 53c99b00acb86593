import { router } from '../../trpc.js';

export const generationRouter = router({});
