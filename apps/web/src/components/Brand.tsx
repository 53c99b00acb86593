import { Link } from 'react-router';

export function Brand({ to = '/' }: { to?: string }) {
  return (
    <Link to={to} className="brand">
      <svg viewBox="0 0 32 32" width="26" height="26" aria-hidden="true">
        <defs>
          <linearGradient id="brand-g" x1="0" y1="0" x2="1" y2="1">
            <stop offset="0" stopColor="#8b7cff" />
            <stop offset="1" stopColor="#3fd0c9" />
          </linearGradient>
        </defs>
        <rect width="32" height="32" rx="8" fill="url(#brand-g)" />
        <circle cx="16" cy="15" r="7" fill="#0d0f14" opacity=".85" />
        <circle cx="16" cy="15" r="3" fill="#fff" />
      </svg>
      <span>
        Pingvas <em>Studio</em>
      </span>
    </Link>
  );
}
