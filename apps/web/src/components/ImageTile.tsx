import type { MouseEvent } from 'react';
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

/** One thumbnail with hover actions; in select mode a click selects instead of opening. */
export function ImageTile({ image, href, selected, selecting, onSelect, onOpen, onStar, onAddToBoard, onDownload, onDelete, onRemove }: ImageTileProps) {
  const picture = (
    <>
      <img src={image.thumbUrl} alt={image.prompt} loading="lazy" width={image.width} height={image.height} />
      {image.engine === 'reference' && <span className="engine-label">reference engine — no model</span>}
    </>
  );
  return (
    <figure className={`tile${selected ? ' selected' : ''}${selecting ? ' selecting' : ''}`} data-testid="image-tile" data-image-id={image.id}>
      {!selecting && href ? (
        <Link to={href} className="tile-picture" title={image.prompt}>{picture}</Link>
      ) : !selecting && onOpen ? (
        <button type="button" className="tile-picture" onClick={onOpen} aria-label={`View: ${image.prompt}`}>{picture}</button>
      ) : (
        <button type="button" className="tile-picture" onClick={onSelect} aria-pressed={selected} aria-label={`Select: ${image.prompt}`}>{picture}</button>
      )}
      {onSelect && (
        <button type="button" className={`tile-check${selected ? ' on' : ''}`} aria-label={selected ? 'Deselect' : 'Select'} aria-pressed={selected} onClick={onSelect} data-testid="tile-select">
          <svg viewBox="0 0 16 16" aria-hidden="true" fill="none" stroke="currentColor" strokeWidth={2}><path d="M3.5 8.5l3 3 6-7" /></svg>
        </button>
      )}
      {image.starred && !onStar && <span className="tile-star" aria-label="Starred"><Icon name="star" filled size={14} /></span>}
      <div className="tile-actions">
        {onStar && (
          <button type="button" className={`tile-action${image.starred ? ' starred' : ''}`} onClick={onStar} aria-label={image.starred ? 'Unstar' : 'Star'} title={image.starred ? 'Unstar' : 'Star'} data-testid="tile-star">
            <Icon name="star" filled={image.starred} />
          </button>
        )}
        {onAddToBoard && <button type="button" className="tile-action" onClick={onAddToBoard} aria-label="Add to board" title="Add to board" data-testid="tile-add-to-board"><Icon name="plus" /></button>}
        {onDownload && <button type="button" className="tile-action" onClick={onDownload} aria-label="Download" title="Download"><Icon name="download" /></button>}
        {onRemove && <button type="button" className="tile-action" onClick={onRemove} aria-label="Remove from board" title="Remove from board" data-testid="tile-remove"><Icon name="minus" /></button>}
        {onDelete && <button type="button" className="tile-action danger" onClick={onDelete} aria-label="Delete" title="Delete" data-testid="tile-delete"><Icon name="trash" /></button>}
      </div>
      <figcaption className="tile-caption">{image.prompt}</figcaption>
    </figure>
  );
}
