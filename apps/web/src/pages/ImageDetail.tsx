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
import { useImageActions } from '../components/imageActions.js';
import { useToast } from '../components/Toasts.js';
import { describeError } from '../lib/errors.js';
import { flattenPages, neighboursOf, type Page } from '../lib/pagination.js';

function modelName(model: string): string {
  return model in MODELS ? MODELS[model as ModelId].name : model;
}

export function ImageDetailPage() {
  const { imageId = '' } = useParams();
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const toast = useToast();
  const image = useQuery(trpc.gallery.get.queryOptions({ imageId }));
  const { star, remove, download } = useImageActions();
  const [picker, setPicker] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
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
                <button
                  type="button"
                  className="button primary"
                  onClick={() => void navigate('/studio', { state: { recall: data.params } })}
                  data-testid="use-settings"
                >
                  <Icon name="sliders" /> Use these settings
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
