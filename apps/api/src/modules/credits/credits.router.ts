import { z } from 'zod';
import {
  classifyCreateInput,
  createJobInputSchema,
  estimateCreateInput,
  estimateUpscale,
  upscaleInputSchema,
  upscalePlan,
} from '@pingvas/core';
import { withUser } from '@pingvas/db';
import { protectedProcedure, publicProcedure, router } from '../../trpc.js';
import { resolveUpscaleSource } from '../generation/job-inputs.js';
import { getBalance } from './ledger.js';
import { listTransactions } from './history.js';

export const transactionsInputSchema = z.object({
  /** Opaque: the `nextCursor` of the previous page. */
  cursor: z.string({ error: 'cursor must be a string' }).max(200, 'cursor is malformed').optional(),
  limit: z
    .number({ error: 'limit must be a number' })
    .int('limit must be a whole number')
    .min(1, 'limit must be at least 1')
    .max(100, 'limit must be at most 100')
    .default(20),
});

export const creditsRouter = router({
  /** The signed-in user's balance: `available` = subscription + purchased; `held` is reserved by live jobs. */
  balance: protectedProcedure.query(({ ctx }) =>
    withUser(ctx.deps.db, ctx.user.id, (tx) => getBalance(tx, ctx.user.id)),
  ),

  /**
   * The credit history, newest first, keyset-paginated: pass the previous page's
   * `nextCursor` (null on the last page). `amount` is the change of the spendable balance
   * (a hold is negative, its capture gives back what was not charged).
   */
  transactions: protectedProcedure
    .input(transactionsInputSchema)
    .query(({ ctx, input }) => listTransactions(ctx.deps.db, ctx.user.id, input)),

  /**
   * What a generation would hold, for the same object `generation.create` takes. Public on
   * purpose, so the landing page can show prices without a session; for a signed-in user it
   * also says the spendable balance and whether it covers the estimate. Neither the plan's size
   * limit nor the inputs are checked here (an img2img's price does not depend on its init
   * image): `generation.create` refuses those with its own messages.
   */
  estimate: publicProcedure
    .input(createJobInputSchema)
    .query(async ({ ctx, input }): Promise<{ credits: number; balance?: number; enough?: boolean }> => {
      const credits = estimateCreateInput(classifyCreateInput(input));
      if (!ctx.user) return { credits };
      const userId = ctx.user.id;
      const { available } = await withUser(ctx.deps.db, userId, (tx) => getBalance(tx, userId));
      return { credits, balance: available, enough: available >= credits };
    }),

  /**
   * What `generation.upscale` would hold for one of the user's gallery images, and the size it
   * would deliver. Refused like the upscale itself: NOT_FOUND for an image not the user's,
   * BAD_REQUEST when the result would be too large.
   */
  estimateUpscale: protectedProcedure
    .input(upscaleInputSchema)
    .query(
      async ({
        ctx,
        input,
      }): Promise<{ credits: number; width: number; height: number; balance: number; enough: boolean }> => {
        const userId = ctx.user.id;
        return withUser(ctx.deps.db, userId, async (tx) => {
          const source = await resolveUpscaleSource(tx, userId, input);
          const credits = estimateUpscale(source, input.scale);
          const { available } = await getBalance(tx, userId);
          return {
            credits,
            ...upscalePlan(source, input.scale).delivered,
            balance: available,
            enough: available >= credits,
          };
        });
      },
    ),
});
