import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useMemo, useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router';
import { MODELS, type ModelId } from '@pingvas/core';
import { useDocumentTitle } from '../app/pageTitle.js';
import { useTRPC } from '../app/trpc.js';
import { BoardPicker } from '../components/BoardPicker.js';
import { ConfirmDialog } from '../components/ConfirmDialog.js';
import { ErrorPanel, Skeleton } from '../components/Feedback.js';
import { Icon } from '../components/Icon.js';
import { ImageLineage } from '../components/ImageLineage.js';
import { useImageActions } from '../components/imageActions.js';
import { InsufficientCreditsModal } from '../components/InsufficientCreditsModal.js';
import { useToast } from '../components/Toasts.js';
import { UpscaleButtons } from '../components/UpscaleButtons.js';
import { useJobStarted } from '../components/useJobStarted.js';
import { checkParams, formatCredits } from '../lib/credits.js';
import { describeError } from '../lib/errors.js';
import { kindLabel } from '../lib/kinds.js';
import { moreLikeThis } from '../lib/recall.js';
import type { StudioRouteState } from './Studio.js';
import { flattenPages, neighboursOf, type Page } from '../lib/pagination.js';

function modelName(model: string): string {
  return model in MODELS ? MODELS[model as ModelId].name : model;
}

export function ImageDetailPage() {
  const { imageId = '' } = useParams();
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const jobStarted = useJobStarted();
  const navigate = useNavigate();
  const toast = useToast();
  const image = useQuery(trpc.gallery.get.queryOptions({ imageId }));
  const { star, remove, download } = useImageActions();
  const [picker, setPicker] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [shortfall, setShortfall] = useState<{ balance: number; needed: number } | null>(null);
  useDocumentTitle(image.data ? `Image: ${image.data.prompt.slice(0, 60)}` : 'Image');
  // Back in the gallery, focus returns to this image's tile.
  const backState = { focusImage: imageId };

  const removeFromBoard = useMutation(
    trpc.boards.removeImage.mutationOptions({
      onSuccess: () =>
        Promise.all([
          queryClient.invalidateQueries(trpc.gallery.get.queryFilter({ imageId })),
          queryClient.invalidateQueries(trpc.boards.pathFilter()),
        ]),
      onError: (error) => toast.error(error),
    }),
  );

  // "More like this" queues at once (a batch of 4 new seeds) and the studio shows it running.
  const variations = image.data?.createInput ? moreLikeThis(image.data.createInput) : null;
  const variationsCheck = variations ? checkParams(variations) : null;
  const more = useMutation(
    trpc.generation.create.mutationOptions({
      onSuccess: (result, params) => {
        jobStarted(result, { ...params, count: params.count ?? 1, totalSteps: params.steps });
        void navigate('/studio');
      },
      onError: (error) => {
        const described = describeError(error);
        if (described.kind === 'payment_required' && described.credits) setShortfall(described.credits);
        else toast.error(error);
      },
    }),
  );

  // ← and → step through the gallery list the user came from (whatever of it is loaded).
  const { prev, next } = useMemo(() => {
    for (const [, data] of queryClient.getQueriesData({ queryKey: trpc.gallery.list.pathKey() })) {
      const found = neighboursOf(
        flattenPages((data as { pages?: Page<{ id: string }>[] } | undefined)?.pages),
        imageId,
      );
      if (found.prev || found.next) return found;
    }
    return {};
  }, [queryClient, trpc, imageId]);

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (
        document.body.classList.contains('modal-open') ||
        (event.target as HTMLElement).closest('input, textarea, select')
      )
        return;
      if (event.key === 'Escape') void navigate('/gallery', { state: { focusImage: imageId } });
      if (event.key === 'ArrowLeft' && prev) void navigate(`/gallery/${prev}`, { replace: true });
      if (event.key === 'ArrowRight' && next) void navigate(`/gallery/${next}`, { replace: true });
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [navigate, prev, next, imageId]);

  if (image.isError) {
    return (
      <div className="page">
        <Link to="/gallery" className="back-link">
          <Icon name="back" /> Gallery
        </Link>
        {['not_found', 'invalid'].includes(describeError(image.error).kind) ? (
          <div className="error-panel">
            <h1>Image not found</h1>
            <p>It may have been deleted.</p>
            <Link className="button" to="/gallery">
              Back to the gallery
            </Link>
          </div>
        ) : (
          <ErrorPanel error={image.error} onRetry={() => void image.refetch()} />
        )}
      </div>
    );
  }

  const data = image.data;
  return (
    <div className="page detail-page">
      <h1 className="sr-only">Image details</h1>
      <Link to="/gallery" state={backState} className="back-link">
        <Icon name="back" /> Gallery <kbd>Esc</kbd>
      </Link>
      <div className="detail">
        <div className="detail-image">
          {data ? (
            <>
              <img
                src={data.originalUrl}
                alt={data.prompt}
                width={data.width}
                height={data.height}
                data-testid="detail-image"
              />
              {data.engine === 'reference' && <span className="engine-label large">reference engine — no model</span>}
              {prev && (
                <Link
                  className="step-button prev"
                  to={`/gallery/${prev}`}
                  replace
                  aria-label="Previous image (←)"
                  title="Previous (←)"
                >
                  <Icon name="back" size={20} />
                </Link>
              )}
              {next && (
                <Link
                  className="step-button next"
                  to={`/gallery/${next}`}
                  replace
                  aria-label="Next image (→)"
                  title="Next (→)"
                >
                  <Icon name="back" size={20} />
                </Link>
              )}
            </>
          ) : (
            <Skeleton className="detail-skeleton" />
          )}
        </div>
        <aside className="detail-panel">
          {!data ? (
            <>
              <Skeleton className="text-skeleton" />
              <Skeleton className="text-skeleton short" />
            </>
          ) : (
            <>
              <p className="detail-kind">
                <span className="kind-badge" data-testid="detail-kind">
                  {kindLabel(data.kind)}
                </span>
                {data.upscale && <span className="muted small"> {data.upscale.scale}× of its source</span>}
              </p>
              <section>
                <h2 className="label">Prompt</h2>
                <p className="prompt-text" data-testid="detail-prompt">
                  {data.prompt}
                </p>
                {data.negativePrompt && (
                  <>
                    <h2 className="label">Negative prompt</h2>
                    <p className="prompt-text muted">{data.negativePrompt}</p>
                  </>
                )}
              </section>
              <div className="detail-actions">
                {/* An upscale has no generation settings of its own; an image whose starting picture is
                    gone still has its prompt and parameters. */}
                {data.kind !== 'upscale' && (
                  <button
                    type="button"
                    className="button primary"
                    onClick={() => {
                      const state: StudioRouteState = {
                        recall: data.createInput ?? data.params,
                        sources: data.createInput ? data.sources : undefined,
                      };
                      void navigate('/studio', { state });
                    }}
                    data-testid="use-settings"
                  >
                    <Icon name="sliders" /> Use these settings
                  </button>
                )}
                {variations && (
                  <button
                    type="button"
                    className="button"
                    aria-disabled={more.isPending}
                    onClick={() => !more.isPending && more.mutate(variations)}
                    data-testid="more-like-this"
                  >
                    <Icon name="refresh" /> More like this
                    {variationsCheck?.estimate !== null && variationsCheck?.estimate !== undefined && (
                      <span className="muted small">
                        {' '}
                        · 4 images, {formatCredits(variationsCheck.estimate)} credits
                      </span>
                    )}
                  </button>
                )}
                <button
                  type="button"
                  className="button"
                  onClick={() => {
                    const state: StudioRouteState = {
                      startFrom: {
                        source: { imageId },
                        url: data.originalUrl,
                        width: data.width,
                        height: data.height,
                        label: `Gallery image: ${data.prompt.slice(0, 40)}`,
                      },
                    };
                    void navigate('/studio', { state });
                  }}
                  data-testid="use-as-start"
                >
                  <Icon name="edit" /> Use as starting image
                </button>
                <button
                  type="button"
                  className={`button${data.starred ? ' on' : ''}`}
                  aria-pressed={data.starred}
                  onClick={() => star.mutate({ imageId, starred: !data.starred })}
                >
                  <Icon name="star" filled={data.starred} /> {data.starred ? 'Starred' : 'Star'}
                </button>
                <button
                  type="button"
                  className="button"
                  onClick={() => setPicker(true)}
                  data-testid="detail-add-to-board"
                >
                  <Icon name="plus" /> Add to board
                </button>
                <button type="button" className="button" onClick={() => void download(imageId)}>
                  <Icon name="download" /> Download
                </button>
                <button type="button" className="button danger ghost" onClick={() => setConfirmDelete(true)}>
                  <Icon name="trash" /> Delete
                </button>
              </div>
              <section>
                <h2 className="label">Upscale</h2>
                <UpscaleButtons
                  image={{
                    id: imageId,
                    width: data.width,
                    height: data.height,
                    prompt: data.prompt,
                    model: data.model,
                  }}
                />
              </section>
              <ImageLineage sources={data.sources} parent={data.parent} children={data.children} />
              <section>
                <h2 className="label">Parameters</h2>
                <dl className="params">
                  <dt>Model</dt>
                  <dd>{modelName(data.model)}</dd>
                  <dt>Size</dt>
                  <dd>
                    {data.width} × {data.height}
                  </dd>
                  <dt>Steps</dt>
                  <dd>{data.steps}</dd>
                  {typeof data.createInput?.strength === 'number' && (
                    <>
                      <dt>Strength</dt>
                      <dd>{data.createInput.strength}</dd>
                    </>
                  )}
                  <dt>CFG scale</dt>
                  <dd>{data.cfgScale}</dd>
                  <dt>Seed</dt>
                  <dd className="mono">{data.seed}</dd>
                  <dt>Sampler</dt>
                  <dd>{data.sampler}</dd>
                  <dt>Engine</dt>
                  <dd>{data.engine === 'reference' ? 'reference engine — no model' : data.engine}</dd>
                  <dt>Created</dt>
                  <dd>{new Date(data.createdAt).toLocaleString()}</dd>
                </dl>
              </section>
              <section>
                <h2 className="label">Boards</h2>
                {data.boards.length === 0 ? (
                  <p className="muted small">Not on any board yet.</p>
                ) : (
                  <ul className="chips" data-testid="detail-boards">
                    {data.boards.map((board) => (
                      <li key={board.id} className="chip">
                        <Link to={`/boards/${board.id}`}>{board.name}</Link>
                        <button
                          type="button"
                          aria-label={`Remove from ${board.name}`}
                          onClick={() => removeFromBoard.mutate({ boardId: board.id, imageId })}
                        >
                          <Icon name="close" size={12} />
                        </button>
                      </li>
                    ))}
                  </ul>
                )}
              </section>
            </>
          )}
        </aside>
      </div>
      {shortfall && (
        <InsufficientCreditsModal
          balance={shortfall.balance}
          needed={shortfall.needed}
          onClose={() => setShortfall(null)}
        />
      )}
      {picker && <BoardPicker imageIds={[imageId]} onClose={() => setPicker(false)} />}
      {confirmDelete && (
        <ConfirmDialog
          title="Delete this image?"
          confirmLabel="Delete"
          danger
          busy={remove.isPending}
          onClose={() => setConfirmDelete(false)}
          onConfirm={() =>
            remove.mutate({ imageIds: [imageId] }, { onSuccess: () => void navigate('/gallery', { replace: true }) })
          }
        >
          <p>The image files are removed for good and it leaves every board it is on.</p>
        </ConfirmDialog>
      )}
    </div>
  );
}
