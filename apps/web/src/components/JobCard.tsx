import { useMutation, useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { jobsStore, type JobEntry } from '../app/jobsStore.js';
import { useTRPC } from '../app/trpc.js';
import { canCancel, describeJobCard } from '../lib/jobCard.js';
import { actionName } from './ImageTile.js';
import { useToast } from './Toasts.js';

function JobImage({ imageId, alt }: { imageId: string; alt: string }) {
  const trpc = useTRPC();
  const image = useQuery(trpc.gallery.get.queryOptions({ imageId }, { staleTime: 5 * 60_000 }));
  if (!image.data) return <div className="job-visual skeleton" />;
  return (
    <Link to={`/gallery/${imageId}`} className="job-visual job-image" title="Open details">
      <img src={image.data.originalUrl} alt={alt} data-testid="job-image" />
      {image.data.engine === 'reference' && <span className="engine-label">reference engine — no model</span>}
    </Link>
  );
}

export function JobCard({ entry }: { entry: JobEntry }) {
  const trpc = useTRPC();
  const toast = useToast();
  const { card } = entry;

  const cancel = useMutation(
    trpc.generation.cancel.mutationOptions({
      onError: (error) => toast.error(error),
    }),
  );

  const ratio = `${entry.width} / ${entry.height}`;
  return (
    <article
      className={`job-card status-${card.status}`}
      data-testid="job-card"
      data-status={card.status}
      data-job-id={card.jobId}
    >
      <div className="job-frame" style={{ aspectRatio: ratio }}>
        {card.status === 'completed' && card.image ? (
          <JobImage imageId={card.image.id} alt={entry.prompt} />
        ) : (
          <div className={`job-visual placeholder ${card.status}`}>
            {card.status === 'in_progress' && (
              <div
                className="progress"
                role="progressbar"
                aria-valuemin={0}
                aria-valuemax={100}
                aria-valuenow={Math.round(card.percent)}
                aria-label="Generation progress"
                data-testid="job-progress"
              >
                <div className="progress-fill" style={{ width: `${card.percent}%` }} />
              </div>
            )}
            {card.status === 'failed' && (
              <span className="status-glyph" aria-hidden="true">
                !
              </span>
            )}
            {card.status === 'cancelled' && (
              <span className="status-glyph" aria-hidden="true">
                –
              </span>
            )}
            {card.status === 'pending' && (
              <span className="queue-dots" aria-hidden="true">
                <i />
                <i />
                <i />
              </span>
            )}
          </div>
        )}
      </div>
      <div className="job-meta">
        <p className="job-prompt" title={entry.prompt}>
          {entry.prompt}
        </p>
        <p className="job-status" data-testid="job-status" role={card.status === 'failed' ? 'alert' : undefined}>
          {card.status === 'in_progress' && <span className="percent">{Math.round(card.percent)}%</span>}
          {describeJobCard(card)}
        </p>
        <div className="job-actions">
          <span className="muted small">
            {entry.model.toUpperCase()} · {entry.width}×{entry.height}
          </span>
          {canCancel(card) ? (
            <button
              type="button"
              className="button small ghost"
              disabled={cancel.isPending}
              onClick={() => cancel.mutate({ jobId: card.jobId })}
              data-testid="job-cancel"
            >
              {cancel.isPending ? 'Cancelling…' : 'Cancel'}
              <span className="sr-only"> {actionName('', entry.prompt).trim()}</span>
            </button>
          ) : (
            <button
              type="button"
              className="icon-button small"
              aria-label={`${actionName('Remove', entry.prompt)} from this list`}
              title="Remove from this list"
              onClick={() => jobsStore.remove(card.jobId)}
            >
              ×
            </button>
          )}
        </div>
      </div>
    </article>
  );
}
