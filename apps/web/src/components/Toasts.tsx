import { createContext, useCallback, useContext, useMemo, useRef, useState, type ReactNode } from 'react';
import { describeError } from '../lib/errors.js';

type Tone = 'info' | 'success' | 'error';
interface Toast {
  id: number;
  tone: Tone;
  title: string;
  message?: string;
}

interface ToastApi {
  show(tone: Tone, title: string, message?: string): void;
  /** Shows what went wrong in words a person can act on (never a stack trace). */
  error(error: unknown): void;
}

const ToastContext = createContext<ToastApi | null>(null);

const LIFETIME_MS = { info: 3500, success: 3500, error: 7000 } as const;

export function ToastProvider({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const nextId = useRef(1);

  const dismiss = useCallback((id: number) => setToasts((list) => list.filter((t) => t.id !== id)), []);

  const show = useCallback<ToastApi['show']>(
    (tone, title, message) => {
      const id = nextId.current++;
      setToasts((list) => [...list.slice(-3), { id, tone, title, message }]);
      window.setTimeout(() => dismiss(id), LIFETIME_MS[tone]);
    },
    [dismiss],
  );

  const api = useMemo<ToastApi>(
    () => ({
      show,
      error: (error) => {
        const described = describeError(error);
        show('error', described.title, described.message);
      },
    }),
    [show],
  );

  return (
    <ToastContext.Provider value={api}>
      {children}
      <div className="toasts" role="region" aria-label="Notifications" aria-live="polite">
        {toasts.map((t) => (
          <div
            key={t.id}
            className={`toast toast-${t.tone}`}
            role={t.tone === 'error' ? 'alert' : 'status'}
            data-testid="toast"
          >
            <div className="toast-body">
              <strong>{t.title}</strong>
              {t.message && <span>{t.message}</span>}
            </div>
            <button type="button" className="icon-button" aria-label="Dismiss" onClick={() => dismiss(t.id)}>
              ×
            </button>
          </div>
        ))}
      </div>
    </ToastContext.Provider>
  );
}

export function useToast(): ToastApi {
  const api = useContext(ToastContext);
  if (!api) throw new Error('useToast outside ToastProvider');
  return api;
}
