import { expect } from 'vitest';
import type postgres from 'postgres';

/**
 * The ledger's invariants (docs/credits-and-jobs.md, "The ledger"), stated once and checked after
 * every scenario, through the owner connection so RLS hides nothing:
 * 1. every balance column equals the sum of its transactions' deltas;
 * 2. nothing is ever negative;
 * 3. held credits equal the open holds;
 * 4. every closed hold was captured for at most what it held, and open/closed holds agree with
 *    the jobs that own them (no terminal job keeps an open hold, no live job lost its hold);
 * 5. every hold has exactly one `hold` entry and, once closed, exactly one closing entry of
 *    its kind, and its entries net out to what it says: an open hold still holds its total,
 *    a captured one cost exactly its captured amount, a released one cost nothing. A double
 *    capture or release would keep 1-3 true (balance and entries move together); this catches it;
 * 6. a refund's debt (refunded purchased credits running jobs held) never exceeds the purchased
 *    credits open holds can still return;
 * 7. every finished job charged exactly what its hold captured (0 when released), and a live
 *    job has charged nothing yet.
 */
export async function expectLedgerInvariants(admin: postgres.Sql, options: { userId?: string } = {}): Promise<void> {
  // Scoped to one user when asked (the lifecycle model checks after every delivery, many users at once):
  // every query then reads that user's rows by index. Entries of another user naming this user's
  // hold are caught by the unscoped check, which such tests run at the end.
  const only = (column: string) => (options.userId ? admin`and ${admin(column)} = ${options.userId}` : admin``);
  const checks: [string, postgres.PendingQuery<postgres.Row[]>][] = [
    [
      'balances must equal their transactions and open holds, and never be negative',
      admin`
        select b.user_id, b.subscription_credits, b.purchased_credits, b.held_credits,
               coalesce(t.sub, 0)::int as sum_sub, coalesce(t.pur, 0)::int as sum_pur, coalesce(t.held, 0)::int as sum_held,
               coalesce(h.open_held, 0)::int as open_held
        from credit_balances b
        left join (select user_id, sum(subscription_delta) sub, sum(purchased_delta) pur, sum(held_delta) held
                   from credit_transactions where true ${only('user_id')} group by user_id) t on t.user_id = b.user_id
        left join (select user_id, sum(subscription_amount + purchased_amount) open_held
                   from credit_holds where status = 'open' ${only('user_id')} group by user_id) h on h.user_id = b.user_id
        where (b.subscription_credits <> coalesce(t.sub, 0) or b.purchased_credits <> coalesce(t.pur, 0)
           or b.held_credits <> coalesce(t.held, 0) or b.held_credits <> coalesce(h.open_held, 0)
           or b.subscription_credits < 0 or b.purchased_credits < 0 or b.held_credits < 0) ${only('b.user_id')}`,
    ],
    [
      'every transaction belongs to a balance',
      admin`
        select t.user_id from credit_transactions t left join credit_balances b on b.user_id = t.user_id where b.user_id is null ${only('t.user_id')} limit 5`,
    ],
    [
      'holds are open with no capture, or closed with one',
      admin`
        select id from credit_holds
        where ((status = 'open' and captured_amount is not null)
           or (status <> 'open' and (captured_amount is null or closed_at is null))) ${only('user_id')}`,
    ],
    [
      'each hold has one hold entry, at most one closing entry, and entries that net to its outcome',
      admin`
        select h.id, h.status, h.total, h.captured_amount, e.holds, e.captures, e.releases, e.spent, e.held, e.same_user
        from (select id, user_id, status, subscription_amount + purchased_amount as total, captured_amount from credit_holds
              where true ${only('user_id')}) h
        left join lateral (
          select count(*) filter (where t.type = 'hold')::int as holds,
                 count(*) filter (where t.type = 'capture')::int as captures,
                 count(*) filter (where t.type = 'release')::int as releases,
                 coalesce(sum(t.subscription_delta + t.purchased_delta), 0)::int as spent,
                 coalesce(sum(t.held_delta), 0)::int as held,
                 coalesce(bool_and(t.user_id = h.user_id), true) as same_user
          from credit_transactions t where t.hold_id = h.id ${options.userId ? admin`and t.user_id = ${options.userId}` : admin``}) e on true
        where e.holds <> 1 or not e.same_user
           or (h.status = 'open' and (e.captures + e.releases <> 0 or e.held <> h.total or e.spent <> -h.total))
           or (h.status = 'captured' and (e.captures <> 1 or e.releases <> 0 or e.held <> 0 or e.spent <> -h.captured_amount))
           or (h.status = 'released' and (e.releases <> 1 or e.captures <> 0 or e.held <> 0 or e.spent <> 0))
        limit 5`,
    ],
    [
      'hold entries name their hold; other entries never touch held credits',
      admin`
        select t.id, t.type from credit_transactions t left join credit_holds h on h.id = t.hold_id
        where ((t.type in ('hold', 'capture', 'release') and h.id is null)
           or (t.type not in ('hold', 'capture', 'release') and (t.hold_id is not null or t.held_delta <> 0))
           or t.balance_after < 0) ${only('t.user_id')}
        limit 5`,
    ],
    [
      'a job holds its credits exactly while it is live',
      admin`
        select j.id, j.status, h.status as hold_status from generation_jobs j join credit_holds h on h.id = j.hold_id
        where ((j.status in ('completed', 'failed', 'cancelled') and h.status = 'open')
           or (j.status in ('pending', 'in_progress') and h.status <> 'open')
           or (j.status = 'completed' and h.status <> 'captured')
           or (j.status = 'failed' and h.status <> 'released')) ${only('j.user_id')}`,
    ],
    [
      'a refund debt is never more than open holds can return',
      admin`
        select b.user_id, b.purchased_debt, coalesce(h.held, 0)::int as held
        from credit_balances b
        left join (select user_id, sum(purchased_amount) held from credit_holds where status = 'open' group by user_id) h on h.user_id = b.user_id
        where b.purchased_debt > coalesce(h.held, 0) ${only('b.user_id')}`,
    ],
    [
      "each finished job's charge equals its hold's captured amount",
      admin`
        select j.id, j.status, j.charged_credits, h.status as hold_status, h.captured_amount
        from generation_jobs j join credit_holds h on h.id = j.hold_id
        where ((h.status <> 'open' and j.status not in ('pending', 'in_progress')
               and coalesce(j.charged_credits, -1) <> coalesce(h.captured_amount, -1))
           or (j.status in ('pending', 'in_progress') and coalesce(j.charged_credits, 0) <> 0)) ${only('j.user_id')}`,
    ],
  ];
  // One round trip for all of them (the lifecycle model runs this after every delivery): each check's
  // offending rows come back as one JSON array, asserted empty under the rule's name.
  const columns = checks.map(
    ([, query], i) => admin`(select coalesce(json_agg(v), '[]') from (${query}) v) as ${admin(`c${i}`)}`,
  );
  const [found] = await admin`select ${columns.reduce((list, column) => admin`${list}, ${column}`)}`;
  checks.forEach(([rule], i) => expect(found![`c${i}`], rule).toEqual([]));
}
