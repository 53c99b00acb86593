import { useQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { Link, useSearchParams } from 'react-router';
import { devLogin, fetchAuthConfig, GOOGLE_LOGIN_URL, SignInFailed } from '../app/auth.js';
import { useDocumentTitle } from '../app/pageTitle.js';
import { useMe } from '../app/session.js';
import { Brand } from '../components/Brand.js';
import { Skeleton } from '../components/Feedback.js';
import { PackCards, PlanCards } from '../components/Pricing.js';
import { SkipLink } from '../components/SkipLink.js';

/** Where to go after signing in: only our own paths, never an open redirect. */
function safeNext(next: string | null): string {
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/studio';
}

function GoogleIcon() {
  return (
    <svg viewBox="0 0 48 48" width="18" height="18" aria-hidden="true">
      <path
        fill="#FFC107"
        d="M43.6 20.5H42V20H24v8h11.3C33.7 32.7 29.2 36 24 36c-6.6 0-12-5.4-12-12s5.4-12 12-12c3.1 0 5.8 1.2 7.9 3.1l5.7-5.7C34 6.1 29.3 4 24 4 12.9 4 4 12.9 4 24s8.9 20 20 20 20-8.9 20-20c0-1.3-.1-2.4-.4-3.5z"
      />
      <path
        fill="#FF3D00"
        d="m6.3 14.7 6.6 4.8C14.7 15.1 19 12 24 12c3.1 0 5.8 1.2 7.9 3.1l5.7-5.7C34 6.1 29.3 4 24 4 16.3 4 9.7 8.3 6.3 14.7z"
      />
      <path
        fill="#4CAF50"
        d="M24 44c5.2 0 9.9-2 13.4-5.2l-6.2-5.2C29.2 35.1 26.7 36 24 36c-5.2 0-9.6-3.3-11.3-8l-6.5 5C9.5 39.6 16.2 44 24 44z"
      />
      <path
        fill="#1976D2"
        d="M43.6 20.5H42V20H24v8h11.3c-.8 2.2-2.2 4.2-4.1 5.6l6.2 5.2C37 39.2 44 34 44 24c0-1.3-.1-2.4-.4-3.5z"
      />
    </svg>
  );
}

function SignInCard() {
  const [params] = useSearchParams();
  const config = useQuery({ queryKey: ['auth-config'], queryFn: fetchAuthConfig, staleTime: Infinity, retry: 1 });
  const [email, setEmail] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const next = safeNext(params.get('next'));

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await devLogin(email.trim());
      window.location.assign(next);
    } catch (caught) {
      setError(
        caught instanceof SignInFailed ? caught.message : 'We could not reach the studio. Try again in a moment.',
      );
      setBusy(false);
    }
  }

  if (config.isPending)
    return (
      <div className="signin-card">
        <Skeleton className="button-skeleton" />
      </div>
    );
  if (config.isError)
    return (
      <div className="signin-card">
        <p className="field-error">Sign-in is unavailable right now. Please reload in a moment.</p>
      </div>
    );
  return (
    <div className="signin-card" id="signin">
      {config.data.google && (
        <a className="button primary large google" href={GOOGLE_LOGIN_URL} data-testid="google-signin">
          <GoogleIcon /> Sign up with Google
        </a>
      )}
      {config.data.devLogin && (
        <form className="dev-login" onSubmit={(e) => void submit(e)} data-testid="dev-login-form">
          <label htmlFor="dev-email">
            Developer sign-in <span className="muted">(local only: Google is not configured)</span>
          </label>
          <div className="inline-form">
            <input
              id="dev-email"
              type="email"
              required
              autoComplete="email"
              placeholder="you@example.com"
              value={email}
              onChange={(e) => setEmail(e.target.value)}
              data-testid="dev-email"
            />
            <button type="submit" className="button primary" disabled={busy} data-testid="dev-login-submit">
              {busy ? 'Signing in…' : 'Sign in'}
            </button>
          </div>
          {error && (
            <p className="field-error" role="alert">
              {error}
            </p>
          )}
        </form>
      )}
      {!config.data.google && !config.data.devLogin && (
        <p className="muted">Sign-in is not configured on this server.</p>
      )}
    </div>
  );
}

const EXAMPLES = [
  { className: 'art-dusk', caption: 'Dusk over terraced hills' },
  { className: 'art-neon', caption: 'Neon city, rain' },
  { className: 'art-sea', caption: 'Quiet sea, long exposure' },
  { className: 'art-bloom', caption: 'Macro petals, soft light' },
  { className: 'art-dune', caption: 'Dunes at noon' },
  { className: 'art-aurora', caption: 'Aurora over a lake' },
];

export function LandingPage() {
  const me = useMe();
  const signedIn = Boolean(me.data);
  useDocumentTitle(null);
  return (
    <div className="landing">
      <SkipLink />
      <header className="landing-top">
        <Brand />
        <nav className="landing-nav" aria-label="Landing">
          <a href="#how">How it works</a>
          <a href="#pricing">Pricing</a>
          {signedIn ? (
            <Link className="button primary" to="/studio">
              Open the studio
            </Link>
          ) : (
            <a className="button" href="#signin">
              Sign in
            </a>
          )}
        </nav>
      </header>

      <main id="main" tabIndex={-1}>
        <section className="hero">
          <div className="hero-copy">
            <p className="eyebrow">Image generation, calmly done</p>
            <h1>Type a prompt. Watch it paint. Keep what you love.</h1>
            <p className="lede">
              Pingvas Studio runs Stable Diffusion XL and 1.5 on dedicated GPUs. See the cost before you press Generate,
              watch every step live, and organise the results in a private gallery with shareable boards.
            </p>
            {signedIn ? (
              <Link className="button primary large" to="/studio" data-testid="open-studio">
                Open the studio
              </Link>
            ) : (
              <SignInCard />
            )}
          </div>
          <div
            className="hero-art"
            role="group"
            aria-label="Illustrations of the kind of pictures people make (gradient placeholders, not AI output)"
          >
            {EXAMPLES.map((e) => (
              <figure key={e.caption} className={`art ${e.className}`}>
                <figcaption>{e.caption}</figcaption>
              </figure>
            ))}
            <p className="art-note">Illustrative placeholders drawn with CSS gradients — not generated images.</p>
          </div>
        </section>

        <section className="features" id="how" aria-labelledby="how-title">
          <h2 id="how-title" className="sr-only">
            How it works
          </h2>
          <article>
            <h3>Know the price first</h3>
            <p>
              The credit estimate updates as you change size, steps and model. You are charged for the engine seconds
              actually used — never more than the estimate.
            </p>
          </article>
          <article>
            <h3>Live progress</h3>
            <p>
              Your place in the queue, then a progress bar step by step, then the image. Cancel any time; unused credits
              come straight back.
            </p>
          </article>
          <article>
            <h3>A gallery that stays tidy</h3>
            <p>Search by prompt, star favourites, collect images on boards and share a board with a private link.</p>
          </article>
          <article>
            <h3>Nothing lost</h3>
            <p>
              If a GPU fails mid-job, the job is retried automatically. If it cannot finish, every credit is refunded.
            </p>
          </article>
        </section>

        <section className="pricing" id="pricing">
          <h2>Plans</h2>
          <p className="muted">Monthly credits refresh each billing period. Cancel any time.</p>
          <PlanCards />
          <h2 className="packs-title">Credit packs</h2>
          <PackCards />
        </section>
      </main>

      <footer className="landing-footer">
        <span>© 2026 Pingvas Studio</span>
        <span className="muted">An SDXL 1024×1024 image at 30 steps is estimated at 90 credits.</span>
      </footer>
    </div>
  );
}
