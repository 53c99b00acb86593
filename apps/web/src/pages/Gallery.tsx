import { useInfiniteQuery } from '@tanstack/react-query';
import { useEffect, useMemo, useRef, useState, type MouseEvent } from 'react';
import { Link, useLocation, useSearchParams } from 'react-router';
import { useDocumentTitle } from '../app/pageTitle.js';
import { useTRPC } from '../app/trpc.js';
import { BoardPicker } from '../components/BoardPicker.js';
import { ConfirmDialog } from '../components/ConfirmDialog.js';
import { EmptyState, ErrorPanel, SkeletonGrid, Spinner } from '../components/Feedback.js';
import { Icon } from '../components/Icon.js';
import { ImageTile, TileKeysHint } from '../components/ImageTile.js';
import { useImageActions } from '../components/imageActions.js';
import { useInfiniteScroll } from '../components/useInfiniteScroll.js';
import { flattenPages, nextCursorOf, rangeBetween } from '../lib/pagination.js';

const PAGE_SIZE = 40;

function useDebounced<T>(value: T, ms: number): T {
  const [debounced, setDebounced] = useState(value);
  useEffect(() => {
    const timer = window.setTimeout(() => setDebounced(value), ms);
    return () => window.clearTimeout(timer);
  }, [value, ms]);
  return debounced;
}

export function GalleryPage() {
  useDocumentTitle('Gallery');
  const trpc = useTRPC();
  const [params, setParams] = useSearchParams();
  const starred = params.get('starred') === '1';
  const [search, setSearch] = useState(params.get('q') ?? '');
  const query = useDebounced(search.trim(), 300);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [selecting, setSelecting] = useState(false);
  const [picker, setPicker] = useState<string[] | null>(null);
  const [confirmDelete, setConfirmDelete] = useState<string[] | null>(null);
  const anchor = useRef<string | null>(null);
  const searchRef = useRef<HTMLInputElement>(null);
  const { star, remove, download } = useImageActions();

  useEffect(() => {
    const next = new URLSearchParams(params);
    if (query) next.set('q', query);
    else next.delete('q');
    if (next.toString() !== params.toString()) setParams(next, { replace: true });
  }, [query, params, setParams]);

  const list = useInfiniteQuery(
    trpc.gallery.list.infiniteQueryOptions(
      { limit: PAGE_SIZE, ...(query ? { search: query } : {}), ...(starred ? { starred: true } : {}) },
      { getNextPageParam: nextCursorOf },
    ),
  );
  const images = useMemo(() => flattenPages(list.data?.pages), [list.data]);
  const sentinel = useInfiniteScroll(list);

  // Back from an image's page, focus returns to its tile (once: a refetch never moves focus).
  const location = useLocation();
  const returning = useRef((location.state as { focusImage?: string } | null)?.focusImage ?? null);
  useEffect(() => {
    const imageId = returning.current;
    if (!imageId || !images.some((image) => image.id === imageId)) return;
    returning.current = null;
    document.querySelector<HTMLElement>(`[data-image-id="${CSS.escape(imageId)}"] .tile-picture`)?.focus();
  }, [images]);

  // "/" focuses search, Escape leaves selection.
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      const typing = (event.target as HTMLElement).closest('input, textarea, select');
      if (event.key === '/' && !typing) {
        event.preventDefault();
        searchRef.current?.focus();
      } else if (event.key === 'Escape' && !document.body.classList.contains('modal-open')) {
        setSelected(new Set());
        setSelecting(false);
      }
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, []);

  function toggle(id: string, event: MouseEvent) {
    event.preventDefault();
    setSelecting(true);
    setSelected((current) => {
      const next = new Set(current);
      if (event.shiftKey && anchor.current) {
        for (const rid of rangeBetween(images, anchor.current, id)) next.add(rid);
      } else if (next.has(id)) {
        next.delete(id);
      } else {
        next.add(id);
      }
      return next;
    });
    anchor.current = id;
  }

  function clearSelection() {
    setSelected(new Set());
    setSelecting(false);
  }

  const selectedIds = [...selected];
  const allStarred = selectedIds.length > 0 && selectedIds.every((id) => images.find((i) => i.id === id)?.starred);

  return (
    <div className="page gallery-page">
      <div className="page-head">
        <h1>Gallery</h1>
        <div className="toolbar">
          <div className="search">
            <input
              ref={searchRef}
              type="search"
              placeholder="Search prompts  ( / )"
              value={search}
              onChange={(e) => setSearch(e.target.value)}
              aria-label="Search by prompt"
              data-testid="gallery-search"
            />
          </div>
          <button
            type="button"
            className={`button toggle${starred ? ' on' : ''}`}
            aria-pressed={starred}
            onClick={() => {
              const next = new URLSearchParams(params);
              if (starred) next.delete('starred');
              else next.set('starred', '1');
              setParams(next, { replace: true });
            }}
            data-testid="starred-filter"
          >
            <Icon name="star" filled={starred} /> Starred
          </button>
          <button
            type="button"
            className={`button toggle${selecting ? ' on' : ''}`}
            aria-pressed={selecting}
            onClick={() => (selecting ? clearSelection() : setSelecting(true))}
          >
            {selecting ? 'Done' : 'Select'}
          </button>
        </div>
      </div>

      {selected.size > 0 && (
        <div className="bulk-bar" role="toolbar" aria-label="Selected images" data-testid="bulk-bar">
          <strong>{selected.size} selected</strong>
          <button type="button" className="button small" onClick={() => setSelected(new Set(images.map((i) => i.id)))}>
            Select all loaded
          </button>
          <span className="spacer" />
          <button
            type="button"
            className="button small"
            onClick={() => {
              for (const id of selectedIds) star.mutate({ imageId: id, starred: !allStarred });
            }}
          >
            <Icon name="star" filled={!allStarred} /> {allStarred ? 'Unstar' : 'Star'}
          </button>
          <button
            type="button"
            className="button small"
            onClick={() => setPicker(selectedIds)}
            data-testid="bulk-add-to-board"
          >
            <Icon name="plus" /> Add to board
          </button>
          <button type="button" className="button small danger" onClick={() => setConfirmDelete(selectedIds)}>
            <Icon name="trash" /> Delete
          </button>
          <button type="button" className="icon-button" aria-label="Clear selection" onClick={clearSelection}>
            <Icon name="close" />
          </button>
        </div>
      )}

      {list.isPending ? (
        <SkeletonGrid />
      ) : list.isError ? (
        <ErrorPanel error={list.error} onRetry={() => void list.refetch()} />
      ) : images.length === 0 ? (
        query || starred ? (
          <EmptyState title="Nothing matches">
            {query ? `No image prompt matches “${query}”.` : 'You have not starred any images yet.'}
          </EmptyState>
        ) : (
          <EmptyState
            title="No images yet"
            action={
              <Link className="button primary" to="/studio">
                Create your first image
              </Link>
            }
          >
            Everything you generate is kept here, newest first.
          </EmptyState>
        )
      ) : (
        <div className="image-grid" data-testid="gallery-grid">
          <TileKeysHint />
          {images.map((image) => (
            <ImageTile
              key={image.id}
              image={image}
              href={`/gallery/${image.id}`}
              selecting={selecting}
              selected={selected.has(image.id)}
              onSelect={(event) => toggle(image.id, event)}
              onStar={() => star.mutate({ imageId: image.id, starred: !image.starred })}
              onAddToBoard={() => setPicker([image.id])}
              onDownload={() => void download(image.id)}
              onDelete={() => setConfirmDelete([image.id])}
            />
          ))}
        </div>
      )}
      <div ref={sentinel} className="sentinel">
        {list.isFetchingNextPage && <Spinner label="Loading more" />}
      </div>

      {picker && <BoardPicker imageIds={picker} onClose={() => setPicker(null)} onDone={clearSelection} />}
      {confirmDelete && (
        <ConfirmDialog
          title={confirmDelete.length === 1 ? 'Delete this image?' : `Delete ${confirmDelete.length} images?`}
          confirmLabel="Delete"
          danger
          busy={remove.isPending}
          onClose={() => setConfirmDelete(null)}
          onConfirm={() =>
            remove.mutate(
              { imageIds: confirmDelete },
              {
                onSuccess: () => {
                  setConfirmDelete(null);
                  clearSelection();
                },
              },
            )
          }
        >
          <p>The image files are removed for good and it leaves every board it is on. Credits are not refunded.</p>
        </ConfirmDialog>
      )}
    </div>
  );
}
