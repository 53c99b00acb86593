import { useMutation, useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { jobsStore, type JobEntry } from '../app/jobsStore.js';
import { useTRPC } from '../app/trpc.js';
import { kindLabel } from '../lib/kinds.js';
import { canCancel, describeJobCard, type JobImageRef } from '../lib/jobCard.js';
import { actionName } from './ImageTile.js';
import { useToast } from './Toasts.js';

function JobImage({ imageId, alt, inBatch }: { imageId: string; alt: string; inBatch: boolean }) {
  const trpc = useTRPC();
  const image = useQuery(trpc.gallery.get.queryOptions({ imageId }, { staleTime: 5 * 60_000 }));
  const className = inBatch ? 'job-batch-item' : 'job-visual';
  if (!image.data) return <div className={`${className} skeleton`} />;
  return (
    <Link to={`/gallery/${imageId}`} className={`${className} job-image`} title="Open details">
      <img src={image.data.originalUrl} alt={alt} data-testid="job-image" />
      {image.data.engine === 'reference' && !inBatch && (
        <span className="engine-label">reference engine — no model</span>
      )}
    </Link>
  );
}

/** Every image of a finished job: one fills the frame, a batch is a grid (index order). */
function JobImages({ images, prompt }: { images: JobImageRef[]; prompt: string }) {
  if (images.length === 1) return <JobImage imageId={images[0]!.id} alt={prompt} inBatch={false} />;
  return (
    <div className="job-visual job-batch" data-testid="job-batch">
      {images.map((image, index) => (
        <JobImage key={image.id} imageId={image.id} alt={`${prompt} (${index + 1} of ${images.length})`} inBatch />
      ))}
    </div>
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
      data-kind={entry.kind}
      data-count={entry.count}
    >
      <div className="job-frame" style={{ aspectRatio: ratio }}>
        {card.status === 'completed' && card.image ? (
          <JobImages images={card.images.length > 0 ? card.images : [card.image]} prompt={entry.prompt} />
        ) : (
          <div className={`job-visual placeholder ${card.status}`}>
            {card.status === 'in_progress' && card.preview && (
              <img
                className="job-preview"
                src={card.preview.dataUrl}
                alt={`Preview of “${entry.prompt}” at step ${card.preview.step}`}
                data-testid="job-preview"
              />
            )}
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
            {/* A plain text-to-image job needs no label. */}
            {entry.kind !== 'txt2img' ? `${kindLabel(entry.kind)} · ` : ''}
            {entry.model.toUpperCase()} · {entry.width}×{entry.height}
            {entry.count > 1 ? ` · ${entry.count} images` : ''}
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
