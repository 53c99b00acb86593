import { describe, expect, it } from 'vitest';
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
  type MaskOp,
} from './mask.js';

/** The mask as rows of '#' (repaint) and '.' (keep), for readable expectations. */
function picture(mask: Mask): string[] {
  const rows: string[] = [];
  for (let y = 0; y < mask.height; y++) {
    let row = '';
    for (let x = 0; x < mask.width; x++) row += mask.data[y * mask.width + x] ? '#' : '.';
    rows.push(row);
  }
  return rows;
}

const stroke = (points: [number, number][], radius = 1, mode: 'paint' | 'erase' = 'paint'): MaskOp => ({
  kind: 'stroke',
  mode,
  radius,
  points: points.map(([x, y]) => ({ x, y })),
});

describe('stroke → mask pixels', () => {
  it('a dot paints the pixels whose centres are within the radius', () => {
    const mask = renderOps(5, 5, [stroke([[2.5, 2.5]], 1)]);
    expect(picture(mask)).toEqual(['.....', '..#..', '.###.', '..#..', '.....']);
  });

  it('a drag paints the whole path between the points, not only its ends', () => {
    const mask = renderOps(8, 3, [
      stroke(
        [
          [0.5, 1.5],
          [7.5, 1.5],
        ],
        0.5,
      ),
    ]);
    expect(picture(mask)).toEqual(['........', '########', '........']);
  });

  it('the eraser clears what the brush painted, only under its path', () => {
    const mask = renderOps(6, 3, [
      stroke(
        [
          [0.5, 1.5],
          [5.5, 1.5],
        ],
        0.5,
      ),
      stroke([[2.5, 1.5]], 0.5, 'erase'),
    ]);
    expect(picture(mask)).toEqual(['......', '##.###', '......']);
  });

  it('strokes past the edges are clipped to the image, and so is the rectangle they report', () => {
    const mask = createMask(4, 4);
    const dirty = paintSegment(mask, { x: -10, y: -10 }, { x: 0.5, y: 0.5 }, 1, 255);
    expect(dirty).toEqual({ x: 0, y: 0, width: 3, height: 3 });
    expect(picture(mask)[0]).toBe('##..');
    expect(paintSegment(mask, { x: 50, y: 50 }, { x: 60, y: 60 }, 2, 255)).toBeNull();
  });

  it('exports opaque black and white, white where the engine repaints', () => {
    const mask = renderOps(2, 1, [stroke([[1.5, 0.5]], 0.5)]);
    expect([...maskToRgba(mask)]).toEqual([0, 0, 0, 255, 255, 255, 255, 255]);
  });

  it('the overlay tints only the repaint pixels of the rectangle asked for', () => {
    const mask = renderOps(3, 1, [stroke([[2.5, 0.5]], 0.5)]);
    const overlay = maskToOverlay(mask, { x: 1, y: 0, width: 2, height: 1 }, [10, 20, 30, 40]);
    expect([...overlay]).toEqual([0, 0, 0, 0, 10, 20, 30, 40]);
  });

  it('maps a pointer on a scaled-down canvas to the image pixel under it', () => {
    const box = { left: 100, top: 50, width: 256, height: 128 };
    expect(toImagePoint({ x: 228, y: 114 }, box, { width: 1024, height: 512 })).toEqual({ x: 512, y: 256 });
  });
});

describe('invert and clear', () => {
  it('invert swaps repaint and keep; twice is the original', () => {
    const once = renderOps(3, 1, [stroke([[0.5, 0.5]], 0.5), { kind: 'invert' }]);
    expect(picture(once)).toEqual(['.##']);
    const twice = renderOps(3, 1, [stroke([[0.5, 0.5]], 0.5), { kind: 'invert' }, { kind: 'invert' }]);
    expect(picture(twice)).toEqual(['#..']);
  });

  it('clear keeps everything, and coverage says how much is repainted', () => {
    const painted = renderOps(4, 1, [
      stroke(
        [
          [0.5, 0.5],
          [1.5, 0.5],
        ],
        0.5,
      ),
    ]);
    expect(coverage(painted)).toBe(0.5);
    expect(coverage(renderOps(4, 1, [stroke([[0.5, 0.5]], 0.5), { kind: 'clear' }]))).toBe(0);
  });
});

describe('undo stack', () => {
  const a = stroke([[0.5, 0.5]], 0.5);
  const b = stroke([[2.5, 0.5]], 0.5);

  it('undo takes back the last op and the mask is replayed without it', () => {
    const history = undo(pushOp(pushOp(EMPTY_HISTORY, a), b));
    expect(history.done).toEqual([a]);
    expect(picture(renderOps(3, 1, history.done))).toEqual(['#..']);
  });

  it('redo brings it back; a new op after an undo forgets what was undone', () => {
    const undone = undo(pushOp(pushOp(EMPTY_HISTORY, a), b));
    expect(redo(undone).done).toEqual([a, b]);
    const branched = pushOp(undone, { kind: 'invert' });
    expect(branched.undone).toEqual([]);
    expect(redo(branched)).toBe(branched);
  });

  it('undo of nothing is the same history', () => {
    expect(undo(EMPTY_HISTORY)).toBe(EMPTY_HISTORY);
  });
});

describe('the keyboard brush', () => {
  const image = { width: 100, height: 50 };

  it('moves by the step with the arrow keys and stops at the edges', () => {
    expect(moveCursor({ x: 50, y: 25 }, 'ArrowRight', 10, image)).toEqual({ x: 60, y: 25 });
    expect(moveCursor({ x: 50, y: 25 }, 'ArrowUp', 10, image)).toEqual({ x: 50, y: 15 });
    expect(moveCursor({ x: 95, y: 45 }, 'ArrowRight', 10, image)).toEqual({ x: 100, y: 45 });
    expect(moveCursor({ x: 3, y: 45 }, 'ArrowDown', 10, image)).toEqual({ x: 3, y: 50 });
    expect(moveCursor({ x: 3, y: 5 }, 'ArrowLeft', 10, image)).toEqual({ x: 0, y: 5 });
  });

  it('ignores other keys', () => {
    expect(moveCursor({ x: 1, y: 1 }, 'a', 10, image)).toBeNull();
  });
});
