import { Link } from 'react-router';
import { kindLabel } from '../lib/kinds.js';

interface Source {
  uploadId: string | null;
  imageId: string | null;
  width: number;
  height: number;
  url: string | null;
}

/**
 * Where an image came from and what was made from it: the picture and mask it started from,
 * the gallery image its job started from (a link), and the images made from it since.
 */
export function ImageLineage({
  sources,
  parent,
  children,
}: {
  sources: { initImage: Source | null; mask: Source | null };
  parent: { id: string; thumbUrl: string } | null;
  children: { id: string; kind: string; thumbUrl: string }[];
}) {
  const { initImage, mask } = sources;
  if (!initImage && !parent && children.length === 0) return null;
  return (
    <section data-testid="detail-lineage">
      {(initImage || mask) && (
        <>
          <h2 className="label">Started from</h2>
          <div className="source-thumbs">
            {initImage && (
              <figure>
                {initImage.url ? (
                  <img src={initImage.url} alt="The starting image" data-testid="source-init" />
                ) : (
                  <span className="muted small">no longer stored</span>
                )}
                <figcaption>
                  {initImage.imageId ? 'Gallery image' : 'Uploaded picture'} · {initImage.width} × {initImage.height}
                </figcaption>
              </figure>
            )}
            {mask && (
              <figure>
                {mask.url ? (
                  <img src={mask.url} alt="The mask: white is what was redrawn" data-testid="source-mask" />
                ) : (
                  <span className="muted small">no longer stored</span>
                )}
                <figcaption>Mask</figcaption>
              </figure>
            )}
          </div>
        </>
      )}
      {parent && (
        <>
          <h2 className="label">Made from</h2>
          <ul className="lineage">
            <li>
              <Link to={`/gallery/${parent.id}`} data-testid="lineage-parent">
                <img src={parent.thumbUrl} alt="The image this one was made from" />
              </Link>
            </li>
          </ul>
        </>
      )}
      {children.length > 0 && (
        <>
          <h2 className="label">Made from this image</h2>
          <ul className="lineage" data-testid="lineage-children">
            {children.map((child, index) => (
              <li key={child.id}>
                <Link to={`/gallery/${child.id}`}>
                  <img src={child.thumbUrl} alt={`${kindLabel(child.kind)} ${index + 1} made from this image`} />
                </Link>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}
