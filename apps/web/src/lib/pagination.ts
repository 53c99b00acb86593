/**
 * Keyset pages from the API ({ items, nextCursor }) and what the infinite grids do with them.
 */
export interface Page<T> {
  items: T[];
  nextCursor: string | null | undefined;
}

/** The cursor for the next page, or undefined (TanStack's "no more pages"). */
export function nextCursorOf<T>(page: Page<T> | undefined): string | undefined {
  return page?.nextCursor ?? undefined;
}

/**
 * All pages as one list, each id once: a row can show up on two pages when images were
 * added or deleted while scrolling and a page got refetched.
 */
export function flattenPages<T extends { id: string }>(pages: readonly Page<T>[] | undefined): T[] {
  const seen = new Set<string>();
  const out: T[] = [];
  for (const page of pages ?? []) {
    for (const item of page.items) {
      if (seen.has(item.id)) continue;
      seen.add(item.id);
      out.push(item);
    }
  }
  return out;
}

/** Whether the sentinel coming into view should fetch: never twice at once, never past the end. */
export function shouldFetchMore(state: {
  visible: boolean;
  hasNextPage: boolean;
  isFetchingNextPage: boolean;
}): boolean {
  return state.visible && state.hasNextPage && !state.isFetchingNextPage;
}

/** The ids between two clicked ones in list order (shift-click range selection). */
export function rangeBetween<T extends { id: string }>(items: readonly T[], fromId: string, toId: string): string[] {
  const a = items.findIndex((i) => i.id === fromId);
  const b = items.findIndex((i) => i.id === toId);
  if (a < 0 || b < 0) return b >= 0 ? [toId] : [];
  const [lo, hi] = a <= b ? [a, b] : [b, a];
  return items.slice(lo, hi + 1).map((i) => i.id);
}

/** Applies `fn` to every item of cached infinite pages (optimistic updates); other data passes through. */
export function mapPageItems<T>(data: unknown, fn: (item: T) => T): unknown {
  if (typeof data !== 'object' || data === null || !Array.isArray((data as { pages?: unknown }).pages)) return data;
  const infinite = data as { pages: Page<T>[] };
  return { ...infinite, pages: infinite.pages.map((page) => ({ ...page, items: page.items.map(fn) })) };
}

/** The ids before and after `id` in list order, for stepping through a gallery with arrow keys. */
export function neighboursOf<T extends { id: string }>(
  items: readonly T[],
  id: string,
): { prev?: string; next?: string } {
  const at = items.findIndex((i) => i.id === id);
  if (at < 0) return {};
  return { prev: items[at - 1]?.id, next: items[at + 1]?.id };
}
