import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useMemo, useState, type FormEvent } from 'react';
import { Link, useNavigate, useParams } from 'react-router';
import { useDocumentTitle } from '../app/pageTitle.js';
import { useTRPC } from '../app/trpc.js';
import { ConfirmDialog } from '../components/ConfirmDialog.js';
import { EmptyState, ErrorPanel, SkeletonGrid, Spinner } from '../components/Feedback.js';
import { Icon } from '../components/Icon.js';
import { ImageTile, TileKeysHint } from '../components/ImageTile.js';
import { useToast } from '../components/Toasts.js';
import { useInfiniteScroll } from '../components/useInfiniteScroll.js';
import { describeError } from '../lib/errors.js';
import { flattenPages, nextCursorOf } from '../lib/pagination.js';

function shareUrl(slug: string): string {
  return `${window.location.origin}/b/${slug}`;
}

export function BoardPage() {
  const { boardId = '' } = useParams();
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const toast = useToast();
  const boards = useQuery(trpc.boards.list.queryOptions());
  const board = boards.data?.find((b) => b.id === boardId);
  useDocumentTitle(board ? `${board.name} — Boards` : 'Board');
  const images = useInfiniteQuery(
    trpc.boards.images.infiniteQueryOptions({ boardId, limit: 40 }, { getNextPageParam: nextCursorOf }),
  );
  const items = useMemo(() => flattenPages(images.data?.pages), [images.data]);
  const sentinel = useInfiniteScroll(images);
  const [renaming, setRenaming] = useState<string | null>(null);
  const [confirmDelete, setConfirmDelete] = useState(false);
  // The switch moves at once; it follows the server again when the change has landed.
  const [publicDraft, setPublicDraft] = useState<boolean | null>(null);

  const refresh = () =>
    Promise.all([
      queryClient.invalidateQueries(trpc.boards.pathFilter()),
      queryClient.invalidateQueries(trpc.gallery.get.pathFilter()),
    ]);

  const update = useMutation(
    trpc.boards.update.mutationOptions({
      onSuccess: async (updated, input) => {
        await refresh();
        setRenaming(null);
        if (input.isPublic === true && updated.shareSlug)
          toast.show('success', 'Board is public', 'Anyone with the link can view it.');
        if (input.isPublic === false) toast.show('info', 'Board is private', 'The old share link no longer works.');
      },
      onError: (error) => toast.error(error),
      onSettled: () => setPublicDraft(null),
    }),
  );
  const remove = useMutation(
    trpc.boards.removeImage.mutationOptions({ onSuccess: refresh, onError: (error) => toast.error(error) }),
  );
  const destroy = useMutation(
    trpc.boards.delete.mutationOptions({
      onSuccess: async () => {
        await queryClient.invalidateQueries(trpc.boards.list.queryFilter());
        toast.show('success', 'Board deleted', 'Its images are still in your gallery.');
        void navigate('/boards', { replace: true });
      },
      onError: (error) => toast.error(error),
    }),
  );

  async function copyLink(slug: string) {
    try {
      await navigator.clipboard.writeText(shareUrl(slug));
      toast.show('success', 'Link copied');
    } catch {
      toast.show('info', 'Copy the link', shareUrl(slug));
    }
  }

  function submitRename(event: FormEvent) {
    event.preventDefault();
    if (renaming?.trim()) update.mutate({ boardId, name: renaming.trim() });
  }

  const missing = boards.isSuccess && !board;
  if (missing || (images.isError && ['not_found', 'invalid'].includes(describeError(images.error).kind))) {
    return (
      <div className="page">
        <Link to="/boards" className="back-link">
          <Icon name="back" /> Boards
        </Link>
        <div className="error-panel">
          <h1>Board not found</h1>
          <p>It may have been deleted.</p>
          <Link className="button" to="/boards">
            All boards
          </Link>
        </div>
      </div>
    );
  }

  return (
    <div className="page">
      <Link to="/boards" className="back-link">
        <Icon name="back" /> Boards
      </Link>
      <div className="page-head board-head">
        {renaming !== null ? (
          <form className="inline-form" onSubmit={submitRename}>
            <input
              type="text"
              value={renaming}
              maxLength={100}
              autoFocus
              onChange={(e) => setRenaming(e.target.value)}
              onKeyDown={(e) => {
                if (e.key === 'Escape') setRenaming(null);
              }}
              aria-label="Board name"
              data-testid="rename-input"
            />
            <button type="submit" className="button primary" disabled={update.isPending}>
              Save
            </button>
            <button type="button" className="button ghost" onClick={() => setRenaming(null)}>
              Cancel
            </button>
          </form>
        ) : (
          <h1 data-testid="board-title">
            {board?.name ?? '…'}
            {board && (
              <button
                type="button"
                className="icon-button"
                aria-label="Rename board"
                title="Rename"
                onClick={() => setRenaming(board.name)}
              >
                <Icon name="edit" />
              </button>
            )}
          </h1>
        )}
        {board && (
          <div className="toolbar">
            <label className="switch">
              <input
                type="checkbox"
                checked={publicDraft ?? board.isPublic}
                disabled={update.isPending}
                onChange={(e) => {
                  setPublicDraft(e.target.checked);
                  update.mutate({ boardId, isPublic: e.target.checked });
                }}
                data-testid="public-toggle"
              />
              <span className="switch-track" aria-hidden="true" />
              Public
            </label>
            <button type="button" className="button danger ghost" onClick={() => setConfirmDelete(true)}>
              <Icon name="trash" /> Delete board
            </button>
          </div>
        )}
      </div>
      {board?.isPublic && board.shareSlug && (
        <div className="share-box" data-testid="share-box">
          <Icon name="link" />
          <input
            type="text"
            readOnly
            value={shareUrl(board.shareSlug)}
            onFocus={(e) => e.currentTarget.select()}
            aria-label="Share link"
            data-testid="share-link"
          />
          <button
            type="button"
            className="button small"
            onClick={() => void copyLink(board.shareSlug!)}
            data-testid="copy-link"
          >
            Copy link
          </button>
          <a className="button small ghost" href={shareUrl(board.shareSlug)} target="_blank" rel="noreferrer">
            Open
          </a>
        </div>
      )}

      {images.isPending ? (
        <SkeletonGrid count={8} />
      ) : images.isError ? (
        <ErrorPanel error={images.error} onRetry={() => void images.refetch()} />
      ) : items.length === 0 ? (
        <EmptyState
          title="This board is empty"
          action={
            <Link className="button primary" to="/gallery">
              Pick images in the gallery
            </Link>
          }
        >
          In the gallery, hover an image and press + (or select several) to add them here.
        </EmptyState>
      ) : (
        <div className="image-grid" data-testid="board-images">
          <TileKeysHint />
          {items.map((image) => (
            <ImageTile
              key={image.id}
              image={image}
              href={`/gallery/${image.id}`}
              onRemove={() => remove.mutate({ boardId, imageId: image.id })}
            />
          ))}
        </div>
      )}
      <div ref={sentinel} className="sentinel">
        {images.isFetchingNextPage && <Spinner label="Loading more" />}
      </div>

      {confirmDelete && board && (
        <ConfirmDialog
          title={`Delete “${board.name}”?`}
          confirmLabel="Delete board"
          danger
          busy={destroy.isPending}
          onClose={() => setConfirmDelete(false)}
          onConfirm={() => destroy.mutate({ boardId })}
        >
          <p>The board and its share link go away. The images stay in your gallery.</p>
        </ConfirmDialog>
      )}
    </div>
  );
}
