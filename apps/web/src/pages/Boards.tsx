import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { Link, useNavigate } from 'react-router';
import { useDocumentTitle } from '../app/pageTitle.js';
import { useTRPC } from '../app/trpc.js';
import { EmptyState, ErrorPanel, Skeleton } from '../components/Feedback.js';
import { Icon } from '../components/Icon.js';
import { Modal } from '../components/Modal.js';
import { useToast } from '../components/Toasts.js';
import { describeError } from '../lib/errors.js';

function NewBoardDialog({ onClose }: { onClose: () => void }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const toast = useToast();
  const [name, setName] = useState('');
  const [isPublic, setIsPublic] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const create = useMutation(
    trpc.boards.create.mutationOptions({
      onSuccess: async (board) => {
        await queryClient.invalidateQueries(trpc.boards.list.queryFilter());
        toast.show('success', `Board “${board.name}” created`);
        onClose();
        void navigate(`/boards/${board.id}`);
      },
      onError: (caught) => setError(describeError(caught).message),
    }),
  );
  function submit(event: FormEvent) {
    event.preventDefault();
    if (!name.trim()) {
      setError('name must not be empty');
      return;
    }
    create.mutate({ name: name.trim(), isPublic });
  }
  return (
    <Modal title="New board" onClose={onClose} testId="new-board-dialog">
      <form onSubmit={submit} className="stack">
        <div className="field">
          <label htmlFor="board-name">Name</label>
          <input
            id="board-name"
            type="text"
            maxLength={100}
            value={name}
            onChange={(e) => {
              setName(e.target.value);
              setError(null);
            }}
            placeholder="My Favorite Landscapes"
            data-autofocus
            data-testid="board-name"
          />
          {error && (
            <p className="field-error" role="alert">
              {error}
            </p>
          )}
        </div>
        <label className="checkbox">
          <input type="checkbox" checked={isPublic} onChange={(e) => setIsPublic(e.target.checked)} />
          Public — anyone with the link can view it
        </label>
        <div className="modal-footer inline">
          <button type="button" className="button ghost" onClick={onClose}>
            Cancel
          </button>
          <button
            type="submit"
            className="button primary"
            disabled={create.isPending}
            data-testid="board-create-submit"
          >
            Create board
          </button>
        </div>
      </form>
    </Modal>
  );
}

export function BoardsPage() {
  useDocumentTitle('Boards');
  const trpc = useTRPC();
  const boards = useQuery(trpc.boards.list.queryOptions());
  const [creating, setCreating] = useState(false);

  return (
    <div className="page">
      <div className="page-head">
        <h1>Boards</h1>
        <button type="button" className="button primary" onClick={() => setCreating(true)} data-testid="new-board">
          <Icon name="plus" /> New board
        </button>
      </div>
      {boards.isPending ? (
        <div className="board-grid">
          {[0, 1, 2, 3].map((i) => (
            <Skeleton key={i} className="board-skeleton" />
          ))}
        </div>
      ) : boards.isError ? (
        <ErrorPanel error={boards.error} onRetry={() => void boards.refetch()} />
      ) : boards.data.length === 0 ? (
        <EmptyState
          title="No boards yet"
          action={
            <button type="button" className="button primary" onClick={() => setCreating(true)}>
              Create a board
            </button>
          }
        >
          Boards collect images around an idea. An image can be on many boards, and a board can be shared with a link.
        </EmptyState>
      ) : (
        <div className="board-grid" data-testid="board-grid">
          {boards.data.map((board) => (
            <Link key={board.id} to={`/boards/${board.id}`} className="board-card" data-testid="board-card">
              <div
                className="board-cover"
                style={
                  board.coverThumbUrl ? { backgroundImage: `url(${JSON.stringify(board.coverThumbUrl)})` } : undefined
                }
              >
                {!board.coverThumbUrl && <span className="muted small">Empty</span>}
                {board.isPublic && (
                  <span className="badge public">
                    <Icon name="globe" size={12} /> Public
                  </span>
                )}
              </div>
              <div className="board-info">
                <strong>{board.name}</strong>
                <span className="muted small">
                  {board.imageCount} {board.imageCount === 1 ? 'image' : 'images'}
                </span>
              </div>
            </Link>
          ))}
        </div>
      )}
      {creating && <NewBoardDialog onClose={() => setCreating(false)} />}
    </div>
  );
}
