import type { MouseEvent } from 'react';

/** The first tab stop: straight past the header to the page. Moves focus itself (a bare #main would change the URL's hash). */
export function SkipLink({ target = 'main' }: { target?: string }) {
  function skip(event: MouseEvent<HTMLAnchorElement>) {
    const main = document.getElementById(target);
    if (!main) return;
    event.preventDefault();
    main.focus();
  }
  return (
    <a className="skip-link" href={`#${target}`} onClick={skip}>
      Skip to content
    </a>
  );
}
