import { useEffect, useRef } from 'react';
import { shouldFetchMore } from '../lib/pagination.js';

/** Fetches the next page when the returned sentinel element scrolls near the viewport. */
export function useInfiniteScroll(query: {
  hasNextPage: boolean;
  isFetchingNextPage: boolean;
  fetchNextPage: () => unknown;
}) {
  const sentinel = useRef<HTMLDivElement>(null);
  const latest = useRef(query);
  latest.current = query;
  useEffect(() => {
    const element = sentinel.current;
    if (!element || typeof IntersectionObserver === 'undefined') return;
    const observer = new IntersectionObserver(
      (entries) => {
        const visible = entries.some((e) => e.isIntersecting);
        const q = latest.current;
        if (shouldFetchMore({ visible, hasNextPage: q.hasNextPage, isFetchingNextPage: q.isFetchingNextPage }))
          void q.fetchNextPage();
      },
      { rootMargin: '600px 0px' },
    );
    observer.observe(element);
    return () => observer.disconnect();
  }, []);
  return sentinel;
}
