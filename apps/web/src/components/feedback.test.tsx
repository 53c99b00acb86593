import { act, cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryRouter, Route, Routes, useLocation } from 'react-router';
import { ErrorBoundary } from './Feedback.js';
import { InsufficientCreditsModal } from './InsufficientCreditsModal.js';
import { ToastProvider, useToast } from './Toasts.js';

afterEach(cleanup);

function WhereAmI() {
  const location = useLocation();
  return <p data-testid="where">{location.pathname + location.hash}</p>;
}

describe('the insufficient-credits modal', () => {
  it('says what remains and what is needed, and sends the user to upgrade', () => {
    const onClose = vi.fn();
    render(
      <MemoryRouter initialEntries={['/studio']}>
        <Routes>
          <Route path="/studio" element={<InsufficientCreditsModal balance={12} needed={1090} onClose={onClose} />} />
          <Route path="/billing" element={<WhereAmI />} />
        </Routes>
      </MemoryRouter>,
    );
    expect(screen.getByTestId('modal-remaining').textContent).toBe('12');
    expect(screen.getByTestId('modal-needed').textContent).toBe('1,090');
    expect(screen.getByRole('dialog').textContent).toContain(
      'You have 12 credits remaining; this generation needs 1,090.',
    );
    fireEvent.click(screen.getByTestId('modal-upgrade'));
    expect(onClose).toHaveBeenCalled();
    expect(screen.getByTestId('where').textContent).toBe('/billing#plans');
  });

  it('closes on Escape', () => {
    const onClose = vi.fn();
    render(
      <MemoryRouter>
        <InsufficientCreditsModal balance={0} needed={90} onClose={onClose} />
      </MemoryRouter>,
    );
    fireEvent.keyDown(document, { key: 'Escape' });
    expect(onClose).toHaveBeenCalledTimes(1);
  });
});

describe('errors on screen', () => {
  it('a toast for a server error shows a sentence, never the stack', () => {
    let api: ReturnType<typeof useToast> | undefined;
    function Grab() {
      api = useToast();
      return null;
    }
    render(
      <ToastProvider>
        <Grab />
      </ToastProvider>,
    );
    const error = Object.assign(new Error('TypeError: x is undefined\n    at handler (/srv/api/src/x.ts:10:5)'), {
      data: { code: 'INTERNAL_SERVER_ERROR' },
    });
    act(() => api!.error(error));
    const toast = screen.getByTestId('toast');
    expect(toast.textContent).toContain('Something went wrong on our side.');
    expect(toast.textContent).not.toContain('/srv/api');
  });

  it('a rendering crash shows a calm page with a reload button', () => {
    const spy = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    function Boom(): never {
      throw new Error('secret internals at line 42');
    }
    render(
      <ErrorBoundary>
        <Boom />
      </ErrorBoundary>,
    );
    expect(screen.getByRole('alert').textContent).toContain('Something went wrong');
    expect(document.body.textContent).not.toContain('secret internals');
    expect(screen.getByRole('button', { name: 'Reload' })).toBeTruthy();
    spy.mockRestore();
  });
});
