import { useEffect, useRef } from 'react';
import { useLocation, useNavigationType } from 'react-router';
import { focusHeadingWhenReady } from '../lib/focus.js';

const PRODUCT = 'Pingvas Studio';

/** The tab's title names the page, so a screen reader and the history list say where you are. */
export function pageTitle(page: string | null): string {
  return page ? `${page} — ${PRODUCT}` : PRODUCT;
}

export function useDocumentTitle(page: string | null): void {
  useEffect(() => {
    document.title = pageTitle(page);
  }, [page]);
}

/**
 * On a route change (not the first load) focus moves to the new page's h1, as a screen
 * reader user would otherwise stay on a link that no longer exists. Query-string changes
 * (search, filters) are not route changes, and neither are redirects (replace navigations,
 * e.g. back to the page asked for once the session is known): the user went nowhere.
 */
export function useFocusOnRouteChange(): void {
  const { pathname } = useLocation();
  const navigationType = useNavigationType();
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    if (navigationType === 'REPLACE') return;
    return focusHeadingWhenReady(document);
  }, [pathname, navigationType]);
}
