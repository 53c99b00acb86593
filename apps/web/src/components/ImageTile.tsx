import type { KeyboardEvent, MouseEvent, ReactNode } from 'react';
import { Link } from 'react-router';
import { Icon } from './Icon.js';

export interface TileImage {
  id: string;
  thumbUrl: string;
  prompt: string;
  width: number;
  height: number;
  starred?: boolean;
  engine?: string;
}

/** One of a tile's hover actions: out of the Tab order (the tile's own keys reach it), named for its image. */
function TileAction(props: {
  onClick: () => void;
  label: string;
  title: string;
  className?: string | undefined;
  pressed?: boolean;
  testId?: string;
  children: ReactNode;
}) {
  return (
    <button
      type="button"
      tabIndex={-1}
      className={props.className ? `tile-action ${props.className}` : 'tile-action'}
      onClick={props.onClick}
      aria-label={props.label}
      aria-pressed={props.pressed}
      title={props.title}
      data-testid={props.testId}
      data-tile-control
    >
      {props.children}
    </button>
  );
}

interface ImageTileProps {
  image: TileImage;
  href?: string;
  selected?: boolean;
  selecting?: boolean;
  onSelect?: (event: MouseEvent) => void;
  /** Shows the image in place (a lightbox) where it has no page of its own to link to. */
  onOpen?: () => void;
  onStar?: () => void;
  onAddToBoard?: () => void;
  onDownload?: () => void;
  onDelete?: () => void;
  onRemove?: () => void;
}

/** Read once per grid by the tiles' pictures (aria-describedby): how to reach a tile's actions. */
export const TILE_KEYS_HINT_ID = 'tile-keys-hint';

export function TileKeysHint() {
  return (
    <p id={TILE_KEYS_HINT_ID} className="sr-only">
      Use the left and right arrow keys to reach an image’s actions.
    </p>
  );
}

const SHORT_PROMPT = 48;

/** The image an action acts on, in its name: "Star “A futuristic city”". */
export function actionName(action: string, prompt: string): string {
  const text = prompt.trim().replace(/\s+/g, ' ');
  return `${action} “${text.length > SHORT_PROMPT ? `${text.slice(0, SHORT_PROMPT - 1)}…` : text}”`;
}

/**
 * Arrow keys walk a tile's controls: the picture is its one tab stop, the actions (tabindex
 * -1) are a key press away, so a grid of 40 images is 40 tab stops, not 280.
 */
function walkTile(event: KeyboardEvent<HTMLElement>) {
  if (event.key !== 'ArrowRight' && event.key !== 'ArrowLeft') return;
  const controls = [...event.currentTarget.querySelectorAll<HTMLElement>('[data-tile-control]')];
  const at = controls.indexOf(document.activeElement as HTMLElement);
  if (at === -1 || controls.length < 2) return;
  event.preventDefault();
  const step = event.key === 'ArrowRight' ? 1 : -1;
  controls[(at + step + controls.length) % controls.length]!.focus();
}

/** One thumbnail with hover actions; in select mode a click selects instead of opening. */
export function ImageTile({
  image,
  href,
  selected,
  selecting,
  onSelect,
  onOpen,
  onStar,
  onAddToBoard,
  onDownload,
  onDelete,
  onRemove,
}: ImageTileProps) {
  const picture = (
    <img src={image.thumbUrl} alt={image.prompt} loading="lazy" width={image.width} height={image.height} />
  );
  const hasActions = Boolean(onSelect || onStar || onAddToBoard || onDownload || onDelete || onRemove);
  const describedBy = hasActions ? TILE_KEYS_HINT_ID : undefined;
  const name = (action: string) => actionName(action, image.prompt);
  return (
    <figure
      className={`tile${selected ? ' selected' : ''}${selecting ? ' selecting' : ''}`}
      data-testid="image-tile"
      data-image-id={image.id}
      onKeyDown={walkTile}
    >
      {!selecting && href ? (
        <Link to={href} className="tile-picture" title={image.prompt} aria-describedby={describedBy} data-tile-control>
          {picture}
        </Link>
      ) : !selecting && onOpen ? (
        <button
          type="button"
          className="tile-picture"
          onClick={onOpen}
          aria-label={name('View')}
          aria-describedby={describedBy}
          data-tile-control
        >
          {picture}
        </button>
      ) : (
        <button
          type="button"
          className="tile-picture"
          onClick={onSelect}
          aria-pressed={selected}
          aria-label={name('Select')}
          aria-describedby={describedBy}
          data-tile-control
        >
          {picture}
        </button>
      )}
      {onSelect && !selecting && (
        <button
          type="button"
          tabIndex={-1}
          className={`tile-check${selected ? ' on' : ''}`}
          aria-label={name(selected ? 'Deselect' : 'Select')}
          aria-pressed={selected}
          onClick={onSelect}
          data-testid="tile-select"
          data-tile-control
        >
          <svg viewBox="0 0 16 16" aria-hidden="true" fill="none" stroke="currentColor" strokeWidth={2}>
            <path d="M3.5 8.5l3 3 6-7" />
          </svg>
        </button>
      )}
      {selecting && (
        <span className={`tile-check${selected ? ' on' : ''}`} aria-hidden="true">
          <svg viewBox="0 0 16 16" fill="none" stroke="currentColor" strokeWidth={2}>
            <path d="M3.5 8.5l3 3 6-7" />
          </svg>
        </span>
      )}
      {image.starred && !onStar && (
        <span className="tile-star">
          <Icon name="star" filled size={14} />
          <span className="sr-only">Starred</span>
        </span>
      )}
      <div className="tile-actions">
        {onStar && (
          <TileAction
            className={image.starred ? 'starred' : undefined}
            onClick={onStar}
            label={name('Star')}
            pressed={Boolean(image.starred)}
            title={image.starred ? 'Unstar' : 'Star'}
            testId="tile-star"
          >
            <Icon name="star" filled={image.starred} />
          </TileAction>
        )}
        {onAddToBoard && (
          <TileAction
            onClick={onAddToBoard}
            label={name('Add to board:')}
            title="Add to board"
            testId="tile-add-to-board"
          >
            <Icon name="plus" />
          </TileAction>
        )}
        {onDownload && (
          <TileAction onClick={onDownload} label={name('Download')} title="Download">
            <Icon name="download" />
          </TileAction>
        )}
        {onRemove && (
          <TileAction
            onClick={onRemove}
            label={name('Remove from board:')}
            title="Remove from board"
            testId="tile-remove"
          >
            <Icon name="minus" />
          </TileAction>
        )}
        {onDelete && (
          <TileAction className="danger" onClick={onDelete} label={name('Delete')} title="Delete" testId="tile-delete">
            <Icon name="trash" />
          </TileAction>
        )}
      </div>
      <figcaption className="tile-footer">
        <span className="tile-caption" aria-hidden="true">
          {image.prompt}
        </span>
        {image.engine === 'reference' && <span className="engine-label">reference engine — no model</span>}
      </figcaption>
    </figure>
  );
}
