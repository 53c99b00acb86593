import { Suspense, useEffect, useId, useRef, useState } from 'react';
import { Link, Navigate, NavLink, Outlet, useLocation } from 'react-router';
import { PLANS } from '@pingvas/core';
import { logout } from '../app/auth.js';
import { useMe, type Me } from '../app/session.js';
import { formatCredits } from '../lib/credits.js';
import { Brand } from './Brand.js';
import { ErrorPanel, Skeleton, Spinner } from './Feedback.js';
import { ActiveJobs } from './JobWatcher.js';
import { SkipLink } from './SkipLink.js';

const NAV = [
  { to: '/studio', label: 'Studio', key: 'g s' },
  { to: '/gallery', label: 'Gallery', key: 'g g' },
  { to: '/boards', label: 'Boards', key: 'g b' },
  { to: '/billing', label: 'Billing', key: '' },
] as const;

async function signOut(): Promise<void> {
  await logout().catch(() => undefined);
  // A full reload drops every cached query and the WebSocket opened with the old cookie.
  window.location.assign('/');
}

/** A disclosure (not an ARIA menu: it holds account details, not just commands); Escape gives focus back to its button. */
function UserMenu({ me }: { me: Me }) {
  const [open, setOpen] = useState(false);
  const ref = useRef<HTMLDivElement>(null);
  const button = useRef<HTMLButtonElement>(null);
  const panelId = useId();
  useEffect(() => {
    if (!open) return;
    const close = (event: MouseEvent) => {
      if (!ref.current?.contains(event.target as Node)) setOpen(false);
    };
    const onKey = (event: KeyboardEvent) => {
      if (event.key !== 'Escape') return;
      setOpen(false);
      if (ref.current?.contains(document.activeElement) || document.activeElement === document.body)
        button.current?.focus();
    };
    document.addEventListener('mousedown', close);
    document.addEventListener('keydown', onKey);
    return () => {
      document.removeEventListener('mousedown', close);
      document.removeEventListener('keydown', onKey);
    };
  }, [open]);
  const initial = (me.name ?? me.email).trim().charAt(0).toUpperCase();
  return (
    <div className="user-menu" ref={ref}>
      <button
        ref={button}
        type="button"
        className="avatar"
        aria-expanded={open}
        aria-controls={panelId}
        onClick={() => setOpen((v) => !v)}
        data-testid="user-menu"
      >
        {me.avatarUrl ? (
          <img src={me.avatarUrl} alt="" referrerPolicy="no-referrer" />
        ) : (
          <span aria-hidden="true">{initial}</span>
        )}
        <span className="sr-only">Account: {me.name ?? me.email}</span>
      </button>
      {open && (
        <div className="menu" id={panelId}>
          <div className="menu-head">
            <strong>{me.name ?? me.email.split('@')[0]}</strong>
            <span>{me.email}</span>
            <span className={`plan-badge plan-${me.tier}`}>{PLANS[me.tier].name} plan</span>
          </div>
          <Link to="/billing" onClick={() => setOpen(false)}>
            Plan &amp; billing
          </Link>
          <button type="button" onClick={() => void signOut()} data-testid="sign-out">
            Sign out
          </button>
        </div>
      )}
    </div>
  );
}

/**
 * The provider's own update-card link expires within a day, so the banner goes to the billing
 * page, which asks for a fresh one when the customer clicks.
 */
export function AccountBanner({ banner }: { banner: NonNullable<Me['banner']> }) {
  return (
    <div className="account-banner" role="alert" data-testid="account-banner" data-reason={banner.reason}>
      <span className="banner-icon" aria-hidden="true">
        !
      </span>
      <span>{banner.message}</span>
      <Link className="button small" to="/billing?update-card=1#payment">
        Update payment method
      </Link>
    </div>
  );
}

/** Press g then s/g/b to jump between the main screens. */
function useGoShortcuts() {
  const location = useLocation();
  useEffect(() => {
    let armed = 0;
    const onKey = (event: KeyboardEvent) => {
      const target = event.target as HTMLElement;
      if (
        event.metaKey ||
        event.ctrlKey ||
        event.altKey ||
        target.closest('input, textarea, select, [contenteditable]')
      )
        return;
      if (event.key === 'g') {
        armed = Date.now();
        return;
      }
      if (Date.now() - armed > 1200) return;
      const hit = NAV.find((n) => n.key === `g ${event.key}`);
      if (hit && location.pathname !== hit.to) {
        armed = 0;
        document.querySelector<HTMLAnchorElement>(`a[data-nav="${hit.to}"]`)?.click();
      }
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [location.pathname]);
}

/** Header, account banner and the signed-in guard around every private screen. */
export function AppShell() {
  const me = useMe();
  const location = useLocation();
  useGoShortcuts();

  if (me.signedOut)
    return <Navigate to={`/?next=${encodeURIComponent(location.pathname + location.search)}`} replace />;

  return (
    <div className="shell">
      <SkipLink />
      <header className="topbar">
        <Brand to="/studio" />
        <nav className="nav" aria-label="Main">
          {NAV.map((n) => (
            <NavLink
              key={n.to}
              to={n.to}
              data-nav={n.to}
              className={({ isActive }) => (isActive ? 'active' : undefined)}
              title={n.key ? `${n.label} (${n.key})` : n.label}
            >
              {n.label}
            </NavLink>
          ))}
        </nav>
        <div className="topbar-right">
          {me.data ? (
            <>
              <Link to="/billing" className="balance-pill" title="Credits available" data-testid="balance">
                <span className="coin" aria-hidden="true" />
                <span data-testid="balance-value">{formatCredits(me.data.balance.available)}</span>
                <span className="muted">credits</span>
              </Link>
              <UserMenu me={me.data} />
            </>
          ) : (
            <Skeleton className="pill-skeleton" />
          )}
        </div>
      </header>
      {me.data && <ActiveJobs />}
      <main className="main" id="main" tabIndex={-1}>
        {me.data?.banner && <AccountBanner banner={me.data.banner} />}
        {me.isError && !me.signedOut ? (
          <div className="page-center">
            <ErrorPanel error={me.error} onRetry={() => void me.refetch()} />
          </div>
        ) : (
          <Suspense
            fallback={
              <div className="page-center">
                <Spinner />
              </div>
            }
          >
            <Outlet />
          </Suspense>
        )}
      </main>
    </div>
  );
}
