import { z } from 'zod';
import { CREDIT_PACK_SIZES, PAID_TIERS } from '@pingvas/core';
import { protectedProcedure, publicProcedure, router } from '../../trpc.js';
import type { Context } from '../../context.js';
import { publicCatalog } from './catalog.js';
import { startCheckout } from './checkout.service.js';
import { currentSubscription } from './subscription.service.js';

/** Where the caller reached the API (trustProxy honours X-Forwarded-*); PUBLIC_URL outside HTTP. */
function apiOrigin(ctx: Context): string {
  return ctx.req ? `${ctx.req.protocol}://${ctx.req.host}` : ctx.deps.config.PUBLIC_URL.replace(/\/$/, '');
}

export const paymentsRouter = router({
  plans: publicProcedure.query(() => publicCatalog()),

  /** The caller's plan subscription for the billing page (renewal or end date, portal link); null if never subscribed. */
  subscription: protectedProcedure.query(({ ctx }) => currentSubscription(ctx.deps, ctx.user.id)),

  createCheckout: protectedProcedure
    .input(z.object({ tier: z.enum(PAID_TIERS) }))
    .mutation(({ ctx, input }) => startCheckout(ctx.deps, ctx.user, { kind: 'subscription', tier: input.tier }, apiOrigin(ctx))),

  createCreditCheckout: protectedProcedure
    .input(z.object({ pack: z.literal([...CREDIT_PACK_SIZES]) }))
    .mutation(({ ctx, input }) => startCheckout(ctx.deps, ctx.user, { kind: 'credits', pack: input.pack }, apiOrigin(ctx))),
});
