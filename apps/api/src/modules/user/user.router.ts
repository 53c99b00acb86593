import { protectedProcedure, router } from '../../trpc.js';
import { getMe, revokeAllSessions, revokeSession } from '../auth/auth.service.js';
import { endSession } from '../auth/session.js';

export const userRouter = router({
  /** Profile, balance summary and any account banner of the signed-in user. */
  me: protectedProcedure.query(({ ctx }) => getMe(ctx.deps.db, ctx.user.id, ctx.deps.config.PUBLIC_URL)),

  /** Signs this session out on the server (its token stops working everywhere, open WebSockets close) and clears the cookie. */
  signOut: protectedProcedure.mutation(async ({ ctx }) => {
    if (ctx.session) await revokeSession(ctx.deps.db, ctx.session);
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
