import { z } from 'zod';
import { CREDIT_PACK_SIZES, PAID_TIERS } from '@pingvas/core';
import { protectedProcedure, publicProcedure, router } from '../../trpc.js';
import type { Context } from '../../context.js';
import { billingView, updateCardUrl } from './billing-view.service.js';
import { publicCatalog } from './catalog.js';
import { startCheckout } from './checkout.service.js';
import { changePlan } from './plan-change.service.js';

/** Where the caller reached the API (trustProxy honours X-Forwarded-*); PUBLIC_URL outside HTTP. */
function apiOrigin(ctx: Context): string {
  return ctx.req ? `${ctx.req.protocol}://${ctx.req.host}` : ctx.deps.config.PUBLIC_URL.replace(/\/$/, '');
}

export const paymentsRouter = router({
  plans: publicProcedure.query(() => publicCatalog()),

  /** The caller's plan subscription for the billing page (renewal or end date, portal link, whether "Change plan" applies); null if never subscribed. */
  subscription: protectedProcedure.query(({ ctx }) => billingView(ctx.deps, ctx.user.id)),

  /** A first subscription (refused while one is live: that is changePlan). */
  createCheckout: protectedProcedure
    .input(z.object({ tier: z.enum(PAID_TIERS) }))
    .mutation(({ ctx, input }) =>
      startCheckout(ctx.deps, ctx.user, { kind: 'subscription', tier: input.tier }, apiOrigin(ctx)),
    ),

  /** Moves the live subscription to another plan at the provider; tier and credits follow its webhook. */
  changePlan: protectedProcedure
    .input(z.object({ tier: z.enum(PAID_TIERS) }))
    .mutation(({ ctx, input }) => changePlan(ctx.deps, ctx.user, input.tier)),

  /** A fresh update-card link from the provider (its links expire within a day). */
  updateCardUrl: protectedProcedure.mutation(({ ctx }) => updateCardUrl(ctx.deps, ctx.user)),

  createCreditCheckout: protectedProcedure
    .input(z.object({ pack: z.literal([...CREDIT_PACK_SIZES]) }))
    .mutation(({ ctx, input }) =>
      startCheckout(ctx.deps, ctx.user, { kind: 'credits', pack: input.pack }, apiOrigin(ctx)),
    ),
});
