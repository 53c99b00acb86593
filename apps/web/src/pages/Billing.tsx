import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useCallback, useEffect, useRef } from 'react';
import { useLocation, useNavigate, useSearchParams } from 'react-router';
import { PLANS, type CreditPackSize, type PaidTier } from '@pingvas/core';
import { useDocumentTitle } from '../app/pageTitle.js';
import { useMe } from '../app/session.js';
import { useTRPC } from '../app/trpc.js';
import { ErrorPanel, Skeleton, Spinner } from '../components/Feedback.js';
import { PackCards, PlanCards } from '../components/Pricing.js';
import { useToast } from '../components/Toasts.js';
import { formatCredits, formatDelta, transactionLabel } from '../lib/credits.js';
import { flattenPages, nextCursorOf } from '../lib/pagination.js';

function History() {
  const trpc = useTRPC();
  const history = useInfiniteQuery(
    trpc.credits.transactions.infiniteQueryOptions({ limit: 20 }, { getNextPageParam: nextCursorOf }),
  );
  const items = flattenPages(history.data?.pages);
  if (history.isPending)
    return (
      <div className="stack">
        {[0, 1, 2, 3].map((i) => (
          <Skeleton key={i} className="row-skeleton" />
        ))}
      </div>
    );
  if (history.isError) return <ErrorPanel error={history.error} onRetry={() => void history.refetch()} />;
  if (items.length === 0) return <p className="muted">No credit movements yet.</p>;
  return (
    <>
      <div className="table-wrap">
        <table className="history" data-testid="transactions">
          <thead>
            <tr>
              <th>Date</th>
              <th>What</th>
              <th className="num">Change</th>
              <th className="num">Balance</th>
            </tr>
          </thead>
          <tbody>
            {items.map((row) => (
              <tr key={row.id}>
                <td className="nowrap muted">
                  {new Date(row.createdAt).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })}
                </td>
                <td>
                  {transactionLabel(row.type)}
                  {row.description && <span className="muted small"> · {row.description}</span>}
                </td>
                <td className={`num ${row.amount > 0 ? 'plus' : row.amount < 0 ? 'minus' : ''}`}>
                  {formatDelta(row.amount)}
                </td>
                <td className="num">{formatCredits(row.balanceAfter)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {history.hasNextPage && (
        <button
          type="button"
          className="button ghost load-more"
          disabled={history.isFetchingNextPage}
          onClick={() => void history.fetchNextPage()}
        >
          {history.isFetchingNextPage ? <Spinner label="Loading" /> : 'Show older'}
        </button>
      )}
    </>
  );
}

const longDate = (date: Date) => date.toLocaleDateString(undefined, { dateStyle: 'long' });

/** The card update: the provider's link is signed for about a day, so a fresh one is asked for on each click. */
function UpdateCard({ prominent }: { prominent: boolean }) {
  const trpc = useTRPC();
  const toast = useToast();
  const open = useMutation(
    trpc.payments.updateCardUrl.mutationOptions({
      onSuccess: ({ url }) => {
        window.location.assign(url);
      },
      onError: (error) => toast.error(error),
    }),
  );
  return (
    <div id="payment">
      <button
        type="button"
        className={`button small ${prominent ? 'primary' : 'ghost'}`}
        disabled={open.isPending}
        onClick={() => open.mutate()}
        data-testid="update-card"
      >
        {open.isPending ? 'Opening…' : 'Update payment method'}
      </button>
    </div>
  );
}

/** When the plan renews or ends, the card update, and the way to the provider's portal to cancel it. */
function PlanTerm({ askForCard }: { askForCard: boolean }) {
  const trpc = useTRPC();
  const { data: sub } = useQuery(trpc.payments.subscription.queryOptions());
  if (!sub) return null;
  // Past due or paused, the next charge is no date to promise (a failed payment has the account banner).
  const term = sub.cancelled
    ? sub.endsAt &&
      sub.endsAt.getTime() > Date.now() &&
      `Ends on ${longDate(sub.endsAt)} — access and credits stay until then`
    : (sub.status === 'active' || sub.status === 'on_trial') && sub.renewsAt && `Renews on ${longDate(sub.renewsAt)}`;
  return (
    <>
      {term && (
        <span className="muted small" data-testid="plan-term">
          {term}
        </span>
      )}
      {(askForCard || sub.paymentFailedCount > 0 || sub.canChangePlan) && (
        <UpdateCard prominent={askForCard || sub.paymentFailedCount > 0} />
      )}
      {sub.customerPortalUrl && (
        <div>
          <a
            className="button small ghost"
            href={sub.customerPortalUrl}
            target="_blank"
            rel="noreferrer"
            data-testid="manage-subscription"
          >
            Manage subscription
          </a>
        </div>
      )}
    </>
  );
}

export function BillingPage() {
  useDocumentTitle('Plan & billing');
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const toast = useToast();
  const me = useMe();
  const location = useLocation();
  const navigate = useNavigate();
  const [params] = useSearchParams();

  // Back from a paid checkout: the webhook has landed by now, show the new balance (once).
  const thanked = useRef(false);
  useEffect(() => {
    if (params.get('paid') !== '1' || thanked.current) return;
    thanked.current = true;
    void queryClient.invalidateQueries(trpc.user.me.queryFilter());
    void queryClient.invalidateQueries(trpc.credits.pathFilter());
    void queryClient.invalidateQueries(trpc.payments.subscription.queryFilter());
    toast.show('success', 'Payment received', 'Thank you! Your credits are ready to use.');
    void navigate('/billing', { replace: true });
  }, [params, queryClient, trpc, toast, navigate]);

  useEffect(() => {
    if (!location.hash) return;
    const target = document.getElementById(location.hash.slice(1));
    target?.scrollIntoView({ behavior: 'smooth', block: 'start' });
  }, [location.hash, me.data]);

  const toCheckout = {
    onSuccess: ({ url }: { url: string }) => {
      window.location.assign(url);
    },
    onError: (error: unknown) => toast.error(error),
  };
  const subscribe = useMutation(trpc.payments.createCheckout.mutationOptions(toCheckout));
  const buyPack = useMutation(trpc.payments.createCreditCheckout.mutationOptions(toCheckout));
  const refreshAccount = useCallback(() => {
    void queryClient.invalidateQueries(trpc.user.me.queryFilter());
    void queryClient.invalidateQueries(trpc.credits.pathFilter());
    void queryClient.invalidateQueries(trpc.payments.subscription.queryFilter());
  }, [queryClient, trpc]);
  const changePlan = useMutation(
    trpc.payments.changePlan.mutationOptions({
      onSuccess: ({ tier }) => {
        const name = PLANS[tier].name;
        toast.show(
          'success',
          'Plan changed',
          `You are moving to ${name}; it shows here as soon as the payment provider confirms it.`,
        );
        refreshAccount();
        // The provider confirms by webhook, usually within seconds.
        window.setTimeout(refreshAccount, 3000);
      },
      onError: (error) => toast.error(error),
    }),
  );
  const subscription = useQuery(trpc.payments.subscription.queryOptions());
  const busy = subscribe.isPending || buyPack.isPending || changePlan.isPending;
  // One live subscription per customer: with one, the plan changes in place (no second checkout).
  const changesInPlace = Boolean(subscription.data?.canChangePlan);

  const tierButton = (tier: PaidTier) => {
    const action = changesInPlace ? changePlan : subscribe;
    const pending = action.isPending && action.variables?.tier === tier;
    return (
      <button
        type="button"
        className={`button ${tier === 'pro' ? 'primary' : ''}`}
        disabled={busy || subscription.isPending}
        onClick={() => (changesInPlace ? changePlan.mutate({ tier }) : subscribe.mutate({ tier }))}
        data-testid={changesInPlace ? `change-plan-${tier}` : `subscribe-${tier}`}
      >
        {pending
          ? changesInPlace
            ? 'Changing plan…'
            : 'Opening checkout…'
          : `${changesInPlace ? 'Change plan to' : 'Subscribe to'} ${PLANS[tier].name}`}
      </button>
    );
  };
  const packButton = (pack: CreditPackSize) => (
    <button
      type="button"
      className="button"
      disabled={busy}
      onClick={() => buyPack.mutate({ pack })}
      data-testid={`buy-${pack}`}
    >
      {buyPack.isPending && buyPack.variables?.pack === pack ? 'Opening checkout…' : 'Buy'}
    </button>
  );

  const data = me.data;
  return (
    <div className="page billing">
      <div className="page-head">
        <h1>Plan &amp; billing</h1>
      </div>

      <section className="summary-cards">
        <article className="summary-card">
          <span className="label">Current plan</span>
          {data ? (
            <strong className="big" data-testid="current-plan">
              {PLANS[data.tier].name}
            </strong>
          ) : (
            <Skeleton className="text-skeleton" />
          )}
          {data && (
            <span className="muted small">
              {data.tier === 'free'
                ? 'No subscription'
                : `${formatCredits(PLANS[data.tier].monthlyCredits)} credits each billing period`}
            </span>
          )}
          {data && <PlanTerm askForCard={params.get('update-card') === '1'} />}
        </article>
        <article className="summary-card">
          <span className="label">Available credits</span>
          {data ? (
            <strong className="big" data-testid="billing-balance">
              {formatCredits(data.balance.available)}
            </strong>
          ) : (
            <Skeleton className="text-skeleton" />
          )}
          {data && (
            <span className="muted small">
              {formatCredits(data.balance.subscription)} plan · {formatCredits(data.balance.purchased)} purchased
              {data.balance.held > 0 && ` · ${formatCredits(data.balance.held)} reserved by running jobs`}
            </span>
          )}
        </article>
      </section>

      <section id="plans" className="billing-section">
        <h2>Plans</h2>
        <p className="muted">
          Plan credits refresh every billing period and do not roll over. Higher plans queue first and run more jobs at
          once.
        </p>
        <p className="muted" data-testid="plan-change-rules">
          Changing plan keeps your subscription; the payment provider charges or credits the difference for the rest of
          the period. Moving up applies at once: your plan credits for this period grow by the difference between the
          two plans, up to the new plan&apos;s allowance. Moving down caps this period&apos;s plan credits at the new
          plan&apos;s allowance. Purchased credits are never touched.
        </p>
        <PlanCards currentTier={data?.tier} action={tierButton} />
      </section>

      <section id="packs" className="billing-section">
        <h2>Credit packs</h2>
        <p className="muted">
          Purchased credits never expire and stay with you if you change or cancel your plan. Plan credits are spent
          first.
        </p>
        <PackCards action={packButton} />
      </section>

      <section className="billing-section">
        <h2>Credit history</h2>
        <History />
      </section>
    </div>
  );
}
