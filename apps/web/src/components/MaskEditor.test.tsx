import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MaskEditor } from './MaskEditor.js';

afterEach(() => {
  cleanup();
  document.body.innerHTML = '';
});

const image = { url: 'blob:picture', width: 100, height: 50, label: 'cat.png' };

function renderEditor(onApply = vi.fn()) {
  render(<MaskEditor image={image} busy={false} onApply={onApply} />);
  const canvas = screen.getByTestId('mask-canvas');
  // Shown at 200 × 100 CSS pixels: twice the image's size.
  canvas.getBoundingClientRect = () => ({ left: 0, top: 0, width: 200, height: 100 }) as DOMRect;
  return { canvas, onApply };
}

const coverage = () => screen.getByTestId('mask-coverage').textContent;

function drag(canvas: HTMLElement, from: [number, number], to: [number, number]) {
  fireEvent.pointerDown(canvas, { button: 0, pointerId: 1, clientX: from[0], clientY: from[1] });
  fireEvent.pointerMove(canvas, { pointerId: 1, clientX: to[0], clientY: to[1] });
  fireEvent.pointerUp(canvas, { pointerId: 1, clientX: to[0], clientY: to[1] });
}

describe('the mask editor', () => {
  it('paints where the pointer drags, in image pixels, and undo takes the stroke back', () => {
    const { canvas } = renderEditor();
    expect(coverage()).toBe('0% to redraw · 100 × 50');
    fireEvent.change(screen.getByLabelText(/Brush size/), { target: { value: '10' } });
    drag(canvas, [0, 50], [200, 50]);
    // A 10 px brush across the whole 100 px width: 10 of the 50 rows.
    expect(coverage()).toBe('20% to redraw · 100 × 50');
    expect(canvas.getAttribute('aria-label')).toBe('Mask over cat.png: 20% of the picture will be redrawn');
    fireEvent.click(screen.getByRole('button', { name: 'Undo' }));
    expect(coverage()).toBe('0% to redraw · 100 × 50');
    fireEvent.click(screen.getByRole('button', { name: 'Redo' }));
    expect(coverage()).toBe('20% to redraw · 100 × 50');
  });

  it('the eraser, invert and clear are reachable as labelled controls; Ctrl+Z undoes', () => {
    const { canvas } = renderEditor();
    fireEvent.click(screen.getByRole('button', { name: 'Invert' }));
    expect(coverage()).toBe('100% to redraw · 100 × 50');
    fireEvent.click(screen.getByRole('radio', { name: 'Eraser' }));
    fireEvent.change(screen.getByLabelText(/Brush size/), { target: { value: '10' } });
    drag(canvas, [0, 50], [200, 50]);
    expect(coverage()).toBe('80% to redraw · 100 × 50');
    fireEvent.keyDown(canvas, { key: 'z', ctrlKey: true });
    expect(coverage()).toBe('100% to redraw · 100 × 50');
    fireEvent.click(screen.getByRole('button', { name: 'Clear' }));
    expect(coverage()).toBe('0% to redraw · 100 × 50');
    expect(screen.getByRole('toolbar', { name: 'Mask tools' })).toBeTruthy();
  });

  it('refuses an empty mask with a message instead of uploading it', () => {
    const { onApply } = renderEditor();
    fireEvent.click(screen.getByRole('button', { name: 'Use this mask' }));
    expect(screen.getByRole('alert').textContent).toContain('Paint over the part of the picture to redraw first');
    expect(onApply).not.toHaveBeenCalled();
  });

  it('paints with the keyboard alone: arrows move the brush, Space puts it down and lifts it', () => {
    const { canvas } = renderEditor();
    fireEvent.change(screen.getByLabelText(/Brush size/), { target: { value: '10' } });
    canvas.focus();
    // From the centre (50, 25) to the left edge, then down with the brush, across, and up.
    for (let i = 0; i < 10; i++) fireEvent.keyDown(canvas, { key: 'ArrowLeft' });
    fireEvent.keyDown(canvas, { key: ' ' });
    for (let i = 0; i < 20; i++) fireEvent.keyDown(canvas, { key: 'ArrowRight' });
    fireEvent.keyDown(canvas, { key: ' ' });
    // A 10 px brush across the whole width at the middle row: 20% of the picture, one undoable stroke.
    expect(coverage()).toBe('20% to redraw · 100 × 50');
    fireEvent.click(screen.getByRole('button', { name: 'Undo' }));
    expect(coverage()).toBe('0% to redraw · 100 × 50');
    // Moving without the brush down paints nothing.
    fireEvent.keyDown(canvas, { key: 'ArrowDown' });
    expect(coverage()).toBe('0% to redraw · 100 × 50');
  });
});
