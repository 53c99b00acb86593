import { afterEach, describe, expect, it } from 'vitest';
import { focusHeadingWhenReady, nextRadioIndex, returnFocus } from './focus.js';

afterEach(() => {
  document.body.innerHTML = '';
});

function page(html: string): void {
  document.body.innerHTML = html;
}

const active = () => document.activeElement as HTMLElement | null;

describe('focus after a dialog closes', () => {
  it('goes back to the control that opened it', () => {
    page('<main><h1>Gallery</h1><button id="opener">Add to board</button></main>');
    const opener = document.getElementById('opener')!;
    expect(returnFocus(opener)).toBe(opener);
    expect(active()).toBe(opener);
  });

  it('goes to the page heading when the opener is gone, disabled or inert, without adding the heading to the tab order', () => {
    page(
      '<header><h1>Not this one</h1></header><main><h1>Boards</h1><button id="off" disabled>Delete</button><div inert><button id="inert">x</button></div></main>',
    );
    const removed = document.createElement('button');
    expect(returnFocus(removed)?.textContent).toBe('Boards');
    expect(active()?.textContent).toBe('Boards');
    expect(active()?.getAttribute('tabindex')).toBe('-1');
    active()?.blur();
    expect(returnFocus(document.getElementById('off'))?.textContent).toBe('Boards');
    active()?.blur();
    expect(returnFocus(document.getElementById('inert'))?.textContent).toBe('Boards');
  });

  it('never "returns" focus to the body', () => {
    page('<main><h1>Studio</h1></main>');
    expect(returnFocus(document.body)?.textContent).toBe('Studio');
  });
});

describe('focus after a route change', () => {
  it('waits for the new page’s h1 (lazy screens render it late), then focuses it', async () => {
    page('<main id="main"></main>');
    focusHeadingWhenReady(document);
    expect(active()).toBe(document.body);
    const heading = document.createElement('h1');
    heading.textContent = 'Image details';
    document.getElementById('main')!.append(heading);
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(active()).toBe(heading);
  });

  it('leaves focus where the page put it inside main (the prompt after "use these settings")', () => {
    page(
      '<nav><a href="/gallery" id="nav">Gallery</a></nav><main><h1>Studio</h1><textarea id="prompt"></textarea></main>',
    );
    document.getElementById('prompt')!.focus();
    focusHeadingWhenReady(document);
    expect(active()?.id).toBe('prompt');
    document.getElementById('nav')!.focus();
    focusHeadingWhenReady(document);
    expect(active()?.tagName).toBe('H1');
  });

  it('stops waiting when told to', async () => {
    page('<main id="main"></main>');
    const stop = focusHeadingWhenReady(document);
    stop();
    document.getElementById('main')!.append(document.createElement('h1'));
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(active()).toBe(document.body);
  });
});

describe('arrow keys in a radio group', () => {
  it('move forward and back, wrap at the ends, and Home/End jump', () => {
    expect(nextRadioIndex(0, 'ArrowRight', 3)).toBe(1);
    expect(nextRadioIndex(2, 'ArrowDown', 3)).toBe(0);
    expect(nextRadioIndex(0, 'ArrowLeft', 3)).toBe(2);
    expect(nextRadioIndex(1, 'ArrowUp', 3)).toBe(0);
    expect(nextRadioIndex(1, 'Home', 3)).toBe(0);
    expect(nextRadioIndex(0, 'End', 3)).toBe(2);
    expect(nextRadioIndex(0, 'Enter', 3)).toBeNull();
    expect(nextRadioIndex(0, 'ArrowRight', 0)).toBeNull();
  });
});
