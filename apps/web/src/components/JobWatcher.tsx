import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useSubscription } from '@trpc/tanstack-react-query';
import { useEffect } from 'react';
import { useLocation } from 'react-router';
import { jobsStore, useJobs, type JobEntry } from '../app/jobsStore.js';
import { useTRPC } from '../app/trpc.js';
import { cardFromView, initialJobCard, isTerminal, unwrapJobEvent } from '../lib/jobCard.js';
import { useToast } from './Toasts.js';

/**
 * Keeps one job's card up to date from its live events, wherever in the app the user is:
 * the balance and the gallery refresh when it ends, and off the studio a toast says so.
 * Without live events (the WebSocket failed) it polls the job instead; a job that finished
 * unobserved gets its image looked up.
 */
function JobWatcher({ entry }: { entry: JobEntry }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const toast = useToast();
  const location = useLocation();
  const { card } = entry;
  const terminal = isTerminal(card.status);

  function ended(status: string) {
    void queryClient.invalidateQueries(trpc.user.me.queryFilter());
    void queryClient.invalidateQueries(trpc.credits.pathFilter());
    if (status === 'completed') {
      void queryClient.invalidateQueries(trpc.gallery.list.pathFilter());
      // An image made from a gallery image shows on that image's page (its children).
      void queryClient.invalidateQueries(trpc.gallery.get.pathFilter());
    }
    if (location.pathname === '/studio') return;
    if (status === 'completed') toast.show('success', 'Your image is ready', entry.prompt);
    if (status === 'failed')
      toast.show('error', 'A generation failed', 'Its credits were refunded. Details are in the studio.');
  }

  const live = useSubscription(
    trpc.generation.onJob.subscriptionOptions(
      { jobId: card.jobId },
      {
        enabled: !terminal,
        onData: (data) => {
          const event = unwrapJobEvent(data);
          if (!event) return;
          jobsStore.apply(event);
          if (event.type === 'completed' || event.type === 'failed' || event.type === 'cancelled') ended(event.type);
        },
      },
    ),
  );

  const needsView = (live.status === 'error' && !terminal) || (card.status === 'completed' && !card.image);
  const view = useQuery(
    trpc.generation.get.queryOptions(
      { jobId: card.jobId },
      { enabled: needsView, refetchInterval: needsView && !terminal ? 2000 : false },
    ),
  );
  useEffect(() => {
    if (!view.data) return;
    const wasTerminal = terminal;
    jobsStore.applyView(view.data);
    if (!wasTerminal && isTerminal(view.data.status)) ended(view.data.status);
    // Only a new answer from the server acts here, not a re-render.
  }, [view.data]);

  return null;
}

/** Jobs the user already has running (another tab, a reload) join the list on arrival. */
function useServerJobs() {
  const trpc = useTRPC();
  const client = useQueryClient();
  useEffect(() => {
    let stop = false;
    void client
      .fetchQuery(trpc.generation.list.queryOptions({ limit: 12 }))
      .then((page) => {
        if (stop) return;
        jobsStore.merge(
          page.items.map((job) => ({
            card: cardFromView(initialJobCard({ jobId: job.id, status: job.status }), job),
            prompt: job.prompt,
            model: job.model,
            width: job.width,
            height: job.height,
            kind: job.kind,
            count: job.count,
            estimatedCredits: job.estimatedCredits,
            createdAt: new Date(job.createdAt).getTime(),
          })),
        );
      })
      .catch(() => undefined);
    return () => {
      stop = true;
    };
  }, [client, trpc]);
}

/** Mounted once in the signed-in shell: one watcher per job that can still change. */
export function ActiveJobs() {
  const jobs = useJobs();
  useServerJobs();
  return (
    <>
      {jobs
        .filter((e) => !isTerminal(e.card.status) || (e.card.status === 'completed' && !e.card.image))
        .map((e) => (
          <JobWatcher key={e.card.jobId} entry={e} />
        ))}
    </>
  );
}
