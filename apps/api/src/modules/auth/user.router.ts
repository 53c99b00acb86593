import { protectedProcedure, router } from '../../trpc.js';
import { getMe, revokeAllSessions } from './auth.service.js';
import { endSession } from './session.js';

export const userRouter = router({
  /** Profile, balance summary and any account banner of the signed-in user. */
  me: protectedProcedure.query(({ ctx }) => getMe(ctx.deps.db, ctx.user.id)),

  /** Signs this browser out (clears its cookie); the token itself stays valid until it expires. */
  signOut: protectedProcedure.mutation(({ ctx }) => {
    if (ctx.res) endSession(ctx.res, ctx.deps.config);
    return { ok: true as const };
  }),

  /** Revokes every session of the user, on every device, this one included. */
  signOutEverywhere: protectedProcedure.mutation(async ({ ctx }) => {
    await revokeAllSessions(ctx.deps.db, ctx.user.id);
    if (ctx.res) endSession(ctx.res, ctx.deps.config);
    return { ok: true as const };
  }),
});
