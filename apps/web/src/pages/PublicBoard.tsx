import { useInfiniteQuery } from '@tanstack/react-query';
import { useMemo, useState } from 'react';
import { Link, useParams } from 'react-router';
import { useDocumentTitle } from '../app/pageTitle.js';
import { useTRPC } from '../app/trpc.js';
import { Brand } from '../components/Brand.js';
import { EmptyState, SkeletonGrid, Spinner } from '../components/Feedback.js';
import { ImageTile } from '../components/ImageTile.js';
import { Modal } from '../components/Modal.js';
import { SkipLink } from '../components/SkipLink.js';
import { useInfiniteScroll } from '../components/useInfiniteScroll.js';
import { describeError } from '../lib/errors.js';
import { flattenPages, nextCursorOf } from '../lib/pagination.js';

/** A shared board as anyone with the link sees it: read-only, no account needed. */
export function PublicBoardPage() {
  const { slug = '' } = useParams();
  const trpc = useTRPC();
  const view = useInfiniteQuery(
    trpc.boards.publicView.infiniteQueryOptions({ slug, limit: 40 }, { getNextPageParam: nextCursorOf }),
  );
  const items = useMemo(() => flattenPages(view.data?.pages), [view.data]);
  const board = view.data?.pages[0]?.board;
  const sentinel = useInfiniteScroll(view);
  const [open, setOpen] = useState<(typeof items)[number] | null>(null);
  useDocumentTitle(board ? `${board.name} — shared board` : 'Shared board');

  return (
    <div className="public-board">
      <SkipLink />
      <header className="landing-top">
        <Brand />
        <Link className="button" to="/">
          Make your own
        </Link>
      </header>
      <main className="page" id="main" tabIndex={-1}>
        {view.isPending ? (
          <SkeletonGrid count={8} />
        ) : view.isError ? (
          <div className="error-panel" role="alert">
            {describeError(view.error).kind === 'not_found' || describeError(view.error).kind === 'invalid' ? (
              <>
                <h1>This board is not shared</h1>
                <p>The link may be mistyped, or its owner made the board private.</p>
              </>
            ) : (
              <>
                <h1>Could not load this board</h1>
                <p>{describeError(view.error).message}</p>
                <button type="button" className="button" onClick={() => void view.refetch()}>
                  Try again
                </button>
              </>
            )}
          </div>
        ) : (
          <>
            <div className="page-head">
              <div>
                <p className="eyebrow">Shared board</p>
                <h1 data-testid="public-board-title">{board?.name}</h1>
                <p className="muted small">
                  {board?.imageCount} {board?.imageCount === 1 ? 'image' : 'images'}
                </p>
              </div>
            </div>
            {items.length === 0 ? (
              <EmptyState title="Nothing here yet">The owner has not added any images.</EmptyState>
            ) : (
              <div className="image-grid" data-testid="public-board-images">
                {items.map((image) => (
                  <ImageTile key={image.id} image={image} onOpen={() => setOpen(image)} />
                ))}
              </div>
            )}
            <div ref={sentinel} className="sentinel">
              {view.isFetchingNextPage && <Spinner label="Loading more" />}
            </div>
          </>
        )}
      </main>
      {open && (
        <Modal
          title={open.prompt.length > 60 ? `${open.prompt.slice(0, 60)}…` : open.prompt}
          onClose={() => setOpen(null)}
          size="large"
        >
          <img className="lightbox-image" src={open.originalUrl} alt={open.prompt} />
          <p className="muted small">{open.prompt}</p>
        </Modal>
      )}
    </div>
  );
}
