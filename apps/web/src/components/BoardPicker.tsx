import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { useTRPC } from '../app/trpc.js';
import { Skeleton } from './Feedback.js';
import { Modal } from './Modal.js';
import { useToast } from './Toasts.js';

/** Adds one or many images to a board, or to a new board made on the spot. */
export function BoardPicker({
  imageIds,
  onClose,
  onDone,
}: {
  imageIds: string[];
  onClose: () => void;
  onDone?: () => void;
}) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const toast = useToast();
  const boards = useQuery(trpc.boards.list.queryOptions());
  const [name, setName] = useState('');

  const invalidate = () =>
    Promise.all([
      queryClient.invalidateQueries(trpc.boards.pathFilter()),
      queryClient.invalidateQueries(trpc.gallery.get.pathFilter()),
    ]);

  const add = useMutation(
    trpc.boards.addImages.mutationOptions({
      onSuccess: async (result, input) => {
        await invalidate();
        const board = boards.data?.find((b) => b.id === input.boardId);
        const count = input.imageIds.length;
        toast.show(
          'success',
          `Added to ${board?.name ?? 'board'}`,
          result.added < count ? `${count - result.added} were already on it.` : undefined,
        );
        onDone?.();
        onClose();
      },
      onError: (error) => toast.error(error),
    }),
  );

  const create = useMutation(
    trpc.boards.create.mutationOptions({
      onSuccess: (board) => add.mutate({ boardId: board.id, imageIds }),
      onError: (error) => toast.error(error),
    }),
  );

  function submitNew(event: FormEvent) {
    event.preventDefault();
    if (name.trim()) create.mutate({ name: name.trim(), isPublic: false });
  }

  const busy = add.isPending || create.isPending;
  return (
    <Modal
      title={imageIds.length === 1 ? 'Add to board' : `Add ${imageIds.length} images to a board`}
      onClose={onClose}
      testId="board-picker"
    >
      <form className="inline-form" onSubmit={submitNew}>
        <input
          type="text"
          placeholder="New board name"
          value={name}
          maxLength={100}
          onChange={(e) => setName(e.target.value)}
          aria-label="New board name"
          data-testid="new-board-name"
          data-autofocus
        />
        <button type="submit" className="button primary" disabled={busy || !name.trim()}>
          Create &amp; add
        </button>
      </form>
      <div className="board-picker-list">
        {boards.isPending && [0, 1, 2].map((i) => <Skeleton key={i} className="row-skeleton" />)}
        {boards.data?.length === 0 && <p className="muted">No boards yet — name one above.</p>}
        {boards.data?.map((board) => (
          <button
            key={board.id}
            type="button"
            className="board-choice"
            disabled={busy}
            onClick={() => add.mutate({ boardId: board.id, imageIds })}
            data-testid="board-choice"
          >
            <span
              className="board-choice-cover"
              style={
                board.coverThumbUrl ? { backgroundImage: `url(${JSON.stringify(board.coverThumbUrl)})` } : undefined
              }
            />
            <span className="board-choice-name">{board.name}</span>
            <span className="muted small">
              {board.imageCount} {board.imageCount === 1 ? 'image' : 'images'}
            </span>
          </button>
        ))}
      </div>
    </Modal>
  );
}
