/**
 * The inpainting mask as data: one byte per pixel of the init image at its natural size,
 * 255 = repaint (white in the exported PNG), 0 = keep (black). Everything the mask editor
 * draws goes through here, so what the user sees and what is uploaded are the same pixels.
 */

export interface Mask {
  width: number;
  height: number;
  data: Uint8Array;
}

export interface Point {
  x: number;
  y: number;
}

/** One thing the user did, in image pixels; the history replays these. */
export type MaskOp =
  { kind: 'stroke'; mode: 'paint' | 'erase'; radius: number; points: Point[] } | { kind: 'invert' } | { kind: 'clear' };

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export const REPAINT = 255;
export const KEEP = 0;

export function createMask(width: number, height: number): Mask {
  return { width, height, data: new Uint8Array(width * height) };
}

/**
 * Sets every pixel whose centre lies within `radius` of the segment a–b (a round brush
 * dragged along it); a single point is a dot. Returns the rectangle that may have changed.
 */
export function paintSegment(mask: Mask, a: Point, b: Point, radius: number, value: number): Rect | null {
  const r = Math.max(0.5, radius);
  const x0 = Math.max(0, Math.floor(Math.min(a.x, b.x) - r));
  const y0 = Math.max(0, Math.floor(Math.min(a.y, b.y) - r));
  const x1 = Math.min(mask.width - 1, Math.ceil(Math.max(a.x, b.x) + r));
  const y1 = Math.min(mask.height - 1, Math.ceil(Math.max(a.y, b.y) + r));
  if (x0 > x1 || y0 > y1) return null;
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const lengthSquared = dx * dx + dy * dy;
  const r2 = r * r;
  for (let y = y0; y <= y1; y++) {
    const py = y + 0.5;
    for (let x = x0; x <= x1; x++) {
      const px = x + 0.5;
      // Distance from the pixel centre to the nearest point of the segment.
      const t = lengthSquared === 0 ? 0 : Math.max(0, Math.min(1, ((px - a.x) * dx + (py - a.y) * dy) / lengthSquared));
      const ex = px - (a.x + t * dx);
      const ey = py - (a.y + t * dy);
      if (ex * ex + ey * ey <= r2) mask.data[y * mask.width + x] = value;
    }
  }
  return { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
}

/** Draws a whole stroke: every segment between consecutive points (a lone point is a dot). */
export function paintStroke(mask: Mask, op: Extract<MaskOp, { kind: 'stroke' }>): void {
  const value = op.mode === 'paint' ? REPAINT : KEEP;
  const [first, ...rest] = op.points;
  if (!first) return;
  let previous = first;
  paintSegment(mask, first, first, op.radius, value);
  for (const point of rest) {
    paintSegment(mask, previous, point, op.radius, value);
    previous = point;
  }
}

/** Repaint becomes keep and keep becomes repaint. */
export function invertMask(mask: Mask): void {
  for (let i = 0; i < mask.data.length; i++) mask.data[i] = mask.data[i] === KEEP ? REPAINT : KEEP;
}

export function applyOp(mask: Mask, op: MaskOp): void {
  switch (op.kind) {
    case 'stroke':
      paintStroke(mask, op);
      return;
    case 'invert':
      invertMask(mask);
      return;
    case 'clear':
      mask.data.fill(KEEP);
      return;
  }
}

/** The mask the ops make on an empty (all keep) image. */
export function renderOps(width: number, height: number, ops: readonly MaskOp[]): Mask {
  const mask = createMask(width, height);
  for (const op of ops) applyOp(mask, op);
  return mask;
}

/** How much of the image would be repainted, 0–1. */
export function coverage(mask: Mask): number {
  if (mask.data.length === 0) return 0;
  let painted = 0;
  for (const value of mask.data) if (value !== KEEP) painted++;
  return painted / mask.data.length;
}

/** Opaque black and white RGBA, as the PNG the engine reads (white = repaint). */
export function maskToRgba(mask: Mask): Uint8ClampedArray<ArrayBuffer> {
  const rgba = new Uint8ClampedArray(mask.width * mask.height * 4);
  for (let i = 0; i < mask.data.length; i++) {
    const v = mask.data[i]!;
    rgba[i * 4] = v;
    rgba[i * 4 + 1] = v;
    rgba[i * 4 + 2] = v;
    rgba[i * 4 + 3] = 255;
  }
  return rgba;
}

/** The overlay the editor shows on the picture: repaint areas tinted, the rest see-through. */
export function maskToOverlay(
  mask: Mask,
  rect: Rect,
  tint: readonly [number, number, number, number],
): Uint8ClampedArray<ArrayBuffer> {
  const out = new Uint8ClampedArray(rect.width * rect.height * 4);
  for (let y = 0; y < rect.height; y++) {
    for (let x = 0; x < rect.width; x++) {
      if (mask.data[(rect.y + y) * mask.width + rect.x + x] === KEEP) continue;
      const o = (y * rect.width + x) * 4;
      out[o] = tint[0];
      out[o + 1] = tint[1];
      out[o + 2] = tint[2];
      out[o + 3] = tint[3];
    }
  }
  return out;
}

/** A pointer position on the displayed canvas, in the image's own pixels. */
export function toImagePoint(
  client: { x: number; y: number },
  box: { left: number; top: number; width: number; height: number },
  image: { width: number; height: number },
): Point {
  return {
    x: ((client.x - box.left) / box.width) * image.width,
    y: ((client.y - box.top) / box.height) * image.height,
  };
}

const ARROWS: Record<string, [number, number]> = {
  ArrowLeft: [-1, 0],
  ArrowRight: [1, 0],
  ArrowUp: [0, -1],
  ArrowDown: [0, 1],
};

/** The keyboard brush: an arrow key moves it `step` image pixels, never off the picture; null for other keys. */
export function moveCursor(
  point: Point,
  key: string,
  step: number,
  image: { width: number; height: number },
): Point | null {
  const direction = ARROWS[key];
  if (!direction) return null;
  return {
    x: Math.min(image.width, Math.max(0, point.x + direction[0] * step)),
    y: Math.min(image.height, Math.max(0, point.y + direction[1] * step)),
  };
}

/** What was done and what undo took back; a new op forgets the undone ones. */
export interface MaskHistory {
  done: readonly MaskOp[];
  undone: readonly MaskOp[];
}

export const EMPTY_HISTORY: MaskHistory = { done: [], undone: [] };

export function pushOp(history: MaskHistory, op: MaskOp): MaskHistory {
  return { done: [...history.done, op], undone: [] };
}

export function undo(history: MaskHistory): MaskHistory {
  const last = history.done.at(-1);
  if (!last) return history;
  return { done: history.done.slice(0, -1), undone: [last, ...history.undone] };
}

export function redo(history: MaskHistory): MaskHistory {
  const [next, ...rest] = history.undone;
  if (!next) return history;
  return { done: [...history.done, next], undone: rest };
}
