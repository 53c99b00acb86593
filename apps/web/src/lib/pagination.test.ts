import { describe, expect, it } from 'vitest';
import { flattenPages, mapPageItems, neighboursOf, nextCursorOf, rangeBetween, shouldFetchMore } from './pagination.js';

describe('keyset pages', () => {
  it('flattens pages in order and keeps each id once', () => {
    const pages = [
      { items: [{ id: 'a' }, { id: 'b' }], nextCursor: 'c1' },
      { items: [{ id: 'b' }, { id: 'c' }], nextCursor: null },
    ];
    expect(flattenPages(pages).map((i) => i.id)).toEqual(['a', 'b', 'c']);
    expect(flattenPages(undefined)).toEqual([]);
  });

  it('turns a missing cursor into "no more pages"', () => {
    expect(nextCursorOf({ items: [], nextCursor: 'abc' })).toBe('abc');
    expect(nextCursorOf({ items: [], nextCursor: null })).toBeUndefined();
    expect(nextCursorOf(undefined)).toBeUndefined();
  });

  it('fetches only when visible, with more pages, and not already fetching', () => {
    expect(shouldFetchMore({ visible: true, hasNextPage: true, isFetchingNextPage: false })).toBe(true);
    expect(shouldFetchMore({ visible: true, hasNextPage: true, isFetchingNextPage: true })).toBe(false);
    expect(shouldFetchMore({ visible: true, hasNextPage: false, isFetchingNextPage: false })).toBe(false);
    expect(shouldFetchMore({ visible: false, hasNextPage: true, isFetchingNextPage: false })).toBe(false);
  });

  it('selects a range in either direction', () => {
    const items = ['a', 'b', 'c', 'd'].map((id) => ({ id }));
    expect(rangeBetween(items, 'b', 'd')).toEqual(['b', 'c', 'd']);
    expect(rangeBetween(items, 'd', 'b')).toEqual(['b', 'c', 'd']);
    expect(rangeBetween(items, 'zz', 'c')).toEqual(['c']);
  });
});

describe('optimistic page edits', () => {
  it('maps every cached item and leaves other shapes alone', () => {
    const data = {
      pages: [
        { items: [{ id: 'a', starred: false }], nextCursor: 'x' },
        { items: [{ id: 'b', starred: false }], nextCursor: null },
      ],
      pageParams: [undefined, 'x'],
    };
    const next = mapPageItems<{ id: string; starred: boolean }>(data, (i) =>
      i.id === 'b' ? { ...i, starred: true } : i,
    ) as typeof data;
    expect(next.pages[1]!.items[0]!.starred).toBe(true);
    expect(next.pages[0]!.items[0]).toBe(data.pages[0]!.items[0]);
    expect(next.pageParams).toBe(data.pageParams);
    expect(mapPageItems(undefined, (i) => i)).toBeUndefined();
  });
});

describe('stepping through images', () => {
  it('finds the previous and next ids, none at the ends or for an unknown id', () => {
    const items = ['a', 'b', 'c'].map((id) => ({ id }));
    expect(neighboursOf(items, 'b')).toEqual({ prev: 'a', next: 'c' });
    expect(neighboursOf(items, 'a')).toEqual({ prev: undefined, next: 'b' });
    expect(neighboursOf(items, 'x')).toEqual({});
  });
});
