import { useEffect, useId, useRef, useState, type KeyboardEvent, type PointerEvent } from 'react';
import {
  coverage,
  createMask,
  EMPTY_HISTORY,
  maskToOverlay,
  maskToRgba,
  moveCursor,
  paintSegment,
  pushOp,
  redo,
  renderOps,
  toImagePoint,
  undo,
  type Mask,
  type MaskHistory,
  type Point,
  type Rect,
} from '../lib/mask.js';
import { RadioGroup } from './RadioGroup.js';

/** The overlay's tint over the picture: the accent, half see-through. */
const TINT = [139, 124, 255, 150] as const;

type Tool = 'paint' | 'erase';

/** The pointer id a keyboard stroke is kept under (real pointers are never negative). */
const KEYBOARD = -1;

function defaultBrush(width: number, height: number): number {
  return Math.max(4, Math.round(Math.max(width, height) / 20));
}

/** The mask as the PNG the API takes: black and white, at the init image's natural size. */
export function maskToPng(mask: Mask): Promise<Blob> {
  const canvas = document.createElement('canvas');
  canvas.width = mask.width;
  canvas.height = mask.height;
  const context = canvas.getContext('2d');
  if (!context) return Promise.reject(new Error('This browser cannot draw the mask.'));
  context.putImageData(new ImageData(maskToRgba(mask), mask.width, mask.height), 0, 0);
  return new Promise((resolve, reject) =>
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error('The mask could not be saved.'))), 'image/png'),
  );
}

/**
 * Paint over the init image where it should be redrawn (inpainting). Brush and eraser with
 * pointer or touch; invert, clear, undo and redo are buttons (and Ctrl/Cmd+Z, Shift for redo),
 * so a keyboard alone can make a mask too (invert on an empty mask repaints everything).
 * What is shown is the same mask that is exported: the pixels come from `lib/mask.ts`.
 */
export function MaskEditor({
  image,
  busy,
  onApply,
}: {
  image: { url: string; width: number; height: number; label: string };
  busy: boolean;
  onApply: (png: Blob) => void;
}) {
  const ids = { size: useId(), hint: useId() };
  const canvas = useRef<HTMLCanvasElement>(null);
  const mask = useRef<Mask>(createMask(image.width, image.height));
  const stroke = useRef<{ points: Point[]; pointerId: number } | null>(null);
  const [history, setHistory] = useState<MaskHistory>(EMPTY_HISTORY);
  const [tool, setTool] = useState<Tool>('paint');
  const maxBrush = Math.max(8, Math.round(Math.max(image.width, image.height) / 4));
  const [brush, setBrush] = useState(() => defaultBrush(image.width, image.height));
  const [painted, setPainted] = useState(0);
  const [error, setError] = useState<string | null>(null);
  /** The keyboard brush's position, in image pixels; "down" while Space has put it down. */
  const [cursor, setCursor] = useState<Point>({ x: image.width / 2, y: image.height / 2 });
  const [penDown, setPenDown] = useState(false);

  function draw(rect: Rect | null) {
    const context = canvas.current?.getContext('2d');
    if (!context || !rect) return;
    const pixels = maskToOverlay(mask.current, rect, TINT);
    context.putImageData(new ImageData(pixels, rect.width, rect.height), rect.x, rect.y);
  }

  function drawAll() {
    draw({ x: 0, y: 0, width: image.width, height: image.height });
    setPainted(coverage(mask.current));
  }

  /** A history change from a button replays every op; a stroke is already on the canvas. */
  function commit(next: MaskHistory, replay: boolean) {
    setHistory(next);
    setError(null);
    if (replay) mask.current = renderOps(image.width, image.height, next.done);
    drawAll();
  }

  useEffect(() => {
    mask.current = createMask(image.width, image.height);
    setHistory(EMPTY_HISTORY);
    drawAll();
    // A new picture is a new, empty mask.
  }, [image.url, image.width, image.height]);

  const radius = brush / 2;
  const value = tool === 'paint' ? 255 : 0;

  function pointAt(event: PointerEvent<HTMLCanvasElement>): Point {
    const box = event.currentTarget.getBoundingClientRect();
    return toImagePoint({ x: event.clientX, y: event.clientY }, box, image);
  }

  function onPointerDown(event: PointerEvent<HTMLCanvasElement>) {
    if (event.button !== 0 || stroke.current) return;
    event.preventDefault();
    event.currentTarget.setPointerCapture?.(event.pointerId);
    const point = pointAt(event);
    stroke.current = { points: [point], pointerId: event.pointerId };
    draw(paintSegment(mask.current, point, point, radius, value));
  }

  function onPointerMove(event: PointerEvent<HTMLCanvasElement>) {
    const current = stroke.current;
    if (!current || current.pointerId !== event.pointerId) return;
    const point = pointAt(event);
    const previous = current.points[current.points.length - 1]!;
    current.points.push(point);
    draw(paintSegment(mask.current, previous, point, radius, value));
  }

  function onPointerUp(event: PointerEvent<HTMLCanvasElement>) {
    const current = stroke.current;
    if (!current || current.pointerId !== event.pointerId) return;
    stroke.current = null;
    commit(pushOp(history, { kind: 'stroke', mode: tool, radius, points: current.points }), false);
  }

  function endKeyboardStroke() {
    const current = stroke.current;
    setPenDown(false);
    if (!current || current.pointerId !== KEYBOARD) return;
    stroke.current = null;
    commit(pushOp(history, { kind: 'stroke', mode: tool, radius, points: current.points }), false);
  }

  function onCanvasKey(event: KeyboardEvent<HTMLCanvasElement>) {
    if (event.key === ' ' || event.key === 'Enter') {
      event.preventDefault();
      if (stroke.current?.pointerId === KEYBOARD) {
        endKeyboardStroke();
      } else if (!stroke.current) {
        stroke.current = { points: [cursor], pointerId: KEYBOARD };
        setPenDown(true);
        draw(paintSegment(mask.current, cursor, cursor, radius, value));
      }
      return;
    }
    const next = moveCursor(cursor, event.key, event.shiftKey ? brush * 2 : Math.max(1, brush / 2), image);
    if (!next) return;
    event.preventDefault();
    const current = stroke.current;
    if (current?.pointerId === KEYBOARD) {
      current.points.push(next);
      draw(paintSegment(mask.current, cursor, next, radius, value));
    }
    setCursor(next);
  }

  function onKeyDown(event: KeyboardEvent<HTMLDivElement>) {
    if (!(event.ctrlKey || event.metaKey) || event.key.toLowerCase() !== 'z') return;
    event.preventDefault();
    commit(event.shiftKey ? redo(history) : undo(history), true);
  }

  async function apply() {
    if (coverage(mask.current) === 0) {
      setError('Paint over the part of the picture to redraw first (or Invert to redraw all of it).');
      return;
    }
    try {
      onApply(await maskToPng(mask.current));
    } catch (cause) {
      setError(cause instanceof Error ? cause.message : 'The mask could not be saved.');
    }
  }

  const percent = Math.round(painted * 100);
  return (
    <div className="mask-editor" onKeyDown={onKeyDown} data-testid="mask-editor">
      <p id={ids.hint} className="muted small">
        Paint over what should be redrawn; the rest of the picture is kept. Drag with a mouse, pen or finger; or, on the
        picture, move the brush with the arrow keys (Shift: faster) and press Space to put it down or lift it.
      </p>
      <div className="mask-tools" role="toolbar" aria-label="Mask tools">
        <RadioGroup<Tool>
          className="segmented compact"
          label="Mask tool"
          value={tool}
          onChange={setTool}
          options={[
            { value: 'paint', content: 'Brush', testId: 'mask-brush' },
            { value: 'erase', content: 'Eraser', testId: 'mask-eraser' },
          ]}
        />
        <label htmlFor={ids.size} className="mask-size">
          Brush size <span className="value-readout">{brush} px</span>
        </label>
        <input
          id={ids.size}
          type="range"
          min={2}
          max={maxBrush}
          value={brush}
          onChange={(e) => setBrush(Number(e.target.value))}
          data-testid="mask-size"
        />
        <button
          type="button"
          className="button small"
          onClick={() => commit(pushOp(history, { kind: 'invert' }), true)}
          data-testid="mask-invert"
        >
          Invert
        </button>
        <button
          type="button"
          className="button small"
          onClick={() => painted > 0 && commit(pushOp(history, { kind: 'clear' }), true)}
          aria-disabled={painted === 0}
          data-testid="mask-clear"
        >
          Clear
        </button>
        <button
          type="button"
          className="button small"
          onClick={() => commit(undo(history), true)}
          aria-disabled={history.done.length === 0}
          aria-keyshortcuts="Control+Z Meta+Z"
          data-testid="mask-undo"
        >
          Undo
        </button>
        <button
          type="button"
          className="button small"
          onClick={() => commit(redo(history), true)}
          aria-disabled={history.undone.length === 0}
          aria-keyshortcuts="Control+Shift+Z Meta+Shift+Z"
        >
          Redo
        </button>
      </div>
      <div
        className="mask-stage"
        // As wide as fits, but never taller than 60% of the screen: the whole picture stays in view.
        style={{
          aspectRatio: `${image.width} / ${image.height}`,
          width: `min(100%, calc(60vh * ${image.width} / ${image.height}))`,
        }}
      >
        <img src={image.url} alt="" width={image.width} height={image.height} draggable={false} />
        <canvas
          ref={canvas}
          width={image.width}
          height={image.height}
          // An application: a screen reader passes the arrow keys and Space through to the keyboard brush.
          role="application"
          aria-roledescription="mask painter"
          aria-label={`Mask over ${image.label}: ${percent}% of the picture will be redrawn`}
          aria-describedby={ids.hint}
          className={tool === 'erase' ? 'erasing' : undefined}
          onPointerDown={onPointerDown}
          onPointerMove={onPointerMove}
          onPointerUp={onPointerUp}
          onPointerCancel={onPointerUp}
          tabIndex={0}
          onKeyDown={onCanvasKey}
          onBlur={endKeyboardStroke}
          data-testid="mask-canvas"
        />
        <span
          className={`mask-cursor${penDown ? ' down' : ''}`}
          aria-hidden="true"
          style={{
            left: `${(cursor.x / image.width) * 100}%`,
            top: `${(cursor.y / image.height) * 100}%`,
            width: `${(brush / image.width) * 100}%`,
          }}
        />
      </div>
      <div className="mask-footer">
        <span className="muted small" data-testid="mask-coverage">
          {percent}% to redraw · {image.width} × {image.height}
        </span>
        <button
          type="button"
          className="button primary"
          aria-disabled={busy}
          onClick={() => !busy && void apply()}
          data-testid="mask-apply"
        >
          {busy ? 'Saving the mask…' : 'Use this mask'}
        </button>
      </div>
      {error && (
        <p className="field-error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
