import { Link } from 'react-router';
import { useDocumentTitle } from '../app/pageTitle.js';
import { Brand } from '../components/Brand.js';

export function NotFoundPage() {
  useDocumentTitle('Page not found');
  return (
    <main className="page-center not-found">
      <Brand />
      <p className="big-code" aria-hidden="true">
        404
      </p>
      <h1>This page does not exist</h1>
      <p className="muted">The link may be old, or the board may no longer be shared.</p>
      <div className="row gap">
        <Link className="button primary" to="/studio">
          Go to the studio
        </Link>
        <Link className="button" to="/">
          Home
        </Link>
      </div>
    </main>
  );
}
