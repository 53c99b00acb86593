import { router } from '../../trpc.js';

export const galleryRouter = router({});
