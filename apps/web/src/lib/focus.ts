/**
 * Where keyboard focus goes when what held it goes away. Screen-reader and keyboard users
 * lose their place when focus falls back to <body>, so every dialog close and route change
 * lands it somewhere that makes sense.
 */

/** The page's own heading: the h1 inside <main>, or any h1. */
export function pageHeading(doc: Document): HTMLElement | null {
  return doc.querySelector<HTMLElement>('main h1') ?? doc.querySelector<HTMLElement>('h1');
}

/** Focuses a heading (or any non-interactive element) without adding it to the tab order. */
export function focusQuietly(element: HTMLElement): void {
  if (!element.hasAttribute('tabindex')) element.setAttribute('tabindex', '-1');
  element.focus({ preventScroll: false });
}

function canTakeFocus(element: Element | null, doc: Document): element is HTMLElement {
  if (!(element instanceof (doc.defaultView?.HTMLElement ?? HTMLElement))) return false;
  if (!element.isConnected || element === doc.body) return false;
  if ((element as HTMLButtonElement).disabled) return false;
  return !element.closest('[inert], [hidden]');
}

/**
 * Gives focus back after a dialog closes: to the control that opened it when it is still on
 * the page, else to the page's heading. Returns what it focused, if anything.
 */
export function returnFocus(opener: Element | null, doc: Document = document): HTMLElement | null {
  const target = canTakeFocus(opener, doc) ? opener : pageHeading(doc);
  if (!target) return null;
  if (target === opener) target.focus();
  else focusQuietly(target);
  return target;
}

/** Whether the page itself put focus somewhere inside <main> (a field, a link it kept). */
function focusIsPlacedInMain(doc: Document): boolean {
  const active = doc.activeElement;
  return active !== null && active !== doc.body && Boolean(active.closest('main'));
}

/**
 * After a route change: once the new page's h1 is there (lazy screens render it later),
 * moves focus to it, unless the page already placed focus inside <main> on purpose. Returns
 * a function that stops waiting.
 */
export function focusHeadingWhenReady(doc: Document = document, timeoutMs = 5000): () => void {
  let done = false;
  const attempt = (): boolean => {
    const heading = pageHeading(doc);
    if (!heading) return false;
    done = true;
    if (!focusIsPlacedInMain(doc)) focusQuietly(heading);
    return true;
  };
  if (attempt()) return () => undefined;
  const View = doc.defaultView;
  if (!View) return () => undefined;
  const observer = new View.MutationObserver(() => {
    if (!done && attempt()) stop();
  });
  const timer = View.setTimeout(() => stop(), timeoutMs);
  function stop(): void {
    done = true;
    observer.disconnect();
    View!.clearTimeout(timer);
  }
  observer.observe(doc.body, { childList: true, subtree: true });
  return stop;
}

/** The next radio in a group for an arrow key (wrapping, as the ARIA radio group pattern asks), or null. */
export function nextRadioIndex(current: number, key: string, count: number): number | null {
  if (count === 0) return null;
  if (key === 'ArrowRight' || key === 'ArrowDown') return (current + 1) % count;
  if (key === 'ArrowLeft' || key === 'ArrowUp') return (current - 1 + count) % count;
  if (key === 'Home') return 0;
  if (key === 'End') return count - 1;
  return null;
}
