import { Component, type ErrorInfo, type ReactNode } from 'react';
import { Link } from 'react-router';
import { describeError } from '../lib/errors.js';

export function Skeleton({ className = '', style }: { className?: string; style?: React.CSSProperties }) {
  return <div className={`skeleton ${className}`} style={style} aria-hidden="true" />;
}

export function SkeletonGrid({ count = 12 }: { count?: number }) {
  return (
    <div className="image-grid" aria-busy="true" aria-label="Loading">
      {Array.from({ length: count }, (_, i) => (
        <Skeleton key={i} className="tile-skeleton" />
      ))}
    </div>
  );
}

export function Spinner({ label = 'Loading' }: { label?: string }) {
  return <span className="spinner" role="status" aria-label={label} />;
}

export function EmptyState({ title, children, action }: { title: string; children?: ReactNode; action?: ReactNode }) {
  return (
    <div className="empty-state">
      <div className="empty-art" aria-hidden="true" />
      <h2>{title}</h2>
      {children && <p>{children}</p>}
      {action}
    </div>
  );
}

/** A failed load, said plainly, with a retry. */
export function ErrorPanel({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  const described = describeError(error);
  return (
    <div className="error-panel" role="alert">
      <h2>{described.title}</h2>
      <p>{described.message}</p>
      {described.kind === 'unauthorized' ? (
        <Link className="button" to="/">
          Sign in
        </Link>
      ) : (
        onRetry && (
          <button type="button" className="button" onClick={onRetry}>
            Try again
          </button>
        )
      )}
    </div>
  );
}

/** The last line of defence: a rendering bug shows a calm page, never a stack trace. */
export class ErrorBoundary extends Component<{ children: ReactNode }, { failed: boolean }> {
  override state = { failed: false };

  static getDerivedStateFromError(): { failed: boolean } {
    return { failed: true };
  }

  override componentDidCatch(error: unknown, info: ErrorInfo): void {
    console.error('render failed', error, info.componentStack);
  }

  override render() {
    if (!this.state.failed) return this.props.children;
    return (
      <main className="page-center">
        <div className="error-panel" role="alert">
          <h1>Something went wrong</h1>
          <p>This page hit an unexpected problem. Your images and credits are safe.</p>
          <button type="button" className="button primary" onClick={() => window.location.reload()}>
            Reload
          </button>
        </div>
      </main>
    );
  }
}
