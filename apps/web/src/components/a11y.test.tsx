import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { useState } from 'react';
import { Link, MemoryRouter, Navigate, Route, Routes } from 'react-router';
import { afterEach, describe, expect, it } from 'vitest';
import type { JobEntry } from '../app/jobsStore.js';
import { useDocumentTitle, useFocusOnRouteChange } from '../app/pageTitle.js';
import { initialJobCard, type JobCardState } from '../lib/jobCard.js';
import { Modal } from './Modal.js';
import { RadioGroup } from './RadioGroup.js';
import { StudioStatus } from './StudioStatus.js';

afterEach(() => {
  cleanup();
  document.body.innerHTML = '';
});

const active = () => document.activeElement as HTMLElement | null;

/** A page with an opener; `version` re-renders the dialog with a new onClose, as a refetch behind it does. */
function DialogPage({ keepOpener = true }: { keepOpener?: boolean }) {
  const [open, setOpen] = useState(false);
  const [version, setVersion] = useState(0);
  return (
    <main>
      <h1>Gallery</h1>
      {(keepOpener || !open) && (
        <button type="button" onClick={() => setOpen(true)}>
          Add to board
        </button>
      )}
      <button type="button" onClick={() => setVersion((v) => v + 1)} data-testid="refetch">
        refetch {version}
      </button>
      {open && (
        <Modal title="Add to board" onClose={() => setOpen(false)}>
          <input aria-label="New board name" data-autofocus />
          <button type="button">My board</button>
          <button type="button" onClick={() => setVersion((v) => v + 1)}>
            Refetch behind
          </button>
        </Modal>
      )}
    </main>
  );
}

function renderInRoot(ui: React.ReactElement) {
  const root = document.createElement('div');
  root.id = 'root';
  document.body.append(root);
  return render(ui, { container: root });
}

describe('dialog focus', () => {
  it('takes focus on open, keeps the page behind inert, and gives focus back to its opener on Escape', () => {
    renderInRoot(<DialogPage />);
    const opener = screen.getByRole('button', { name: 'Add to board' });
    opener.focus();
    fireEvent.click(opener);
    expect(active()?.getAttribute('aria-label')).toBe('New board name');
    expect(document.getElementById('root')!.hasAttribute('inert')).toBe(true);
    fireEvent.keyDown(document, { key: 'Escape' });
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(document.getElementById('root')!.hasAttribute('inert')).toBe(false);
    expect(active()).toBe(opener);
  });

  it('a re-render behind the dialog (a refetch) never moves focus', () => {
    renderInRoot(<DialogPage />);
    fireEvent.click(screen.getByRole('button', { name: 'Add to board' }));
    const row = screen.getByRole('button', { name: 'My board' });
    row.focus();
    // A click event without a focus change: only the re-render could move focus.
    fireEvent.click(screen.getByRole('button', { name: 'Refetch behind' }));
    fireEvent.click(screen.getByRole('button', { name: 'Refetch behind' }));
    expect(screen.getByTestId('refetch').textContent).toBe('refetch 2');
    expect(active()).toBe(row);
  });

  it('when its opener is gone, gives focus to the page heading', () => {
    renderInRoot(<DialogPage keepOpener={false} />);
    const opener = screen.getByRole('button', { name: 'Add to board' });
    opener.focus();
    fireEvent.click(opener);
    fireEvent.keyDown(document, { key: 'Escape' });
    expect(active()?.tagName).toBe('H1');
    expect(active()?.textContent).toBe('Gallery');
  });
});

describe('radio groups', () => {
  function Sizes() {
    const [value, setValue] = useState<'1:1' | '16:9' | 'custom'>('16:9');
    return (
      <RadioGroup
        label="Aspect ratio"
        value={value}
        onChange={setValue}
        options={[
          { value: '1:1', content: '1:1' },
          { value: '16:9', content: '16:9' },
          { value: 'custom', content: 'Custom' },
        ]}
      />
    );
  }

  it('is one tab stop (the checked option), and the arrow keys move and choose', () => {
    render(<Sizes />);
    const radios = screen.getAllByRole('radio');
    expect(radios.map((r) => r.getAttribute('tabindex'))).toEqual(['-1', '0', '-1']);
    radios[1]!.focus();
    fireEvent.keyDown(radios[1]!, { key: 'ArrowRight' });
    expect(active()?.textContent).toBe('Custom');
    expect(screen.getByRole('radio', { name: 'Custom' }).getAttribute('aria-checked')).toBe('true');
    fireEvent.keyDown(active()!, { key: 'ArrowRight' });
    expect(active()?.textContent).toBe('1:1');
    expect(screen.getAllByRole('radio').map((r) => r.getAttribute('tabindex'))).toEqual(['0', '-1', '-1']);
  });
});

describe('the studio status region', () => {
  const job = (card: Partial<JobCardState>, prompt = 'A futuristic city'): JobEntry => ({
    card: { ...initialJobCard({ jobId: 'j1', status: 'pending', queuePosition: 2 }), ...card },
    prompt,
    model: 'sdxl',
    width: 1024,
    height: 1024,
    kind: 'txt2img',
    count: 1,
    estimatedCredits: 90,
    createdAt: 1,
  });

  it('is one polite status region that says queued, then ready', () => {
    const { rerender } = render(<StudioStatus jobs={[]} />);
    const region = screen.getByRole('status');
    expect(region.textContent).toBe('');
    rerender(<StudioStatus jobs={[job({})]} />);
    expect(region.textContent).toBe('Queued “A futuristic city”, number 2 in the queue.');
    rerender(<StudioStatus jobs={[job({ status: 'in_progress', queuePosition: null, percent: 55 })]} />);
    expect(region.textContent).toBe('Generating “A futuristic city”.');
    rerender(<StudioStatus jobs={[job({ status: 'in_progress', queuePosition: null, percent: 80 })]} />);
    expect(region.textContent).toBe('“A futuristic city”: 75% done.');
    rerender(<StudioStatus jobs={[job({ status: 'completed', percent: 100 })]} />);
    expect(region.textContent).toBe('Image ready: “A futuristic city”.');
  });

  it('does not read out the jobs already there when the studio opens', () => {
    const { rerender } = render(<StudioStatus jobs={[job({ status: 'in_progress', percent: 60 })]} />);
    expect(screen.getByRole('status').textContent).toBe('');
    rerender(<StudioStatus jobs={[job({ status: 'in_progress', percent: 61 })]} />);
    expect(screen.getByRole('status').textContent).toBe('');
  });
});

describe('route changes', () => {
  function Titled({ title, children }: { title: string; children?: React.ReactNode }) {
    useDocumentTitle(title);
    return (
      <>
        <h1>{title}</h1>
        {children}
      </>
    );
  }
  function Shell() {
    useFocusOnRouteChange();
    return (
      <>
        <nav>
          <Link to="/gallery">Gallery</Link>
        </nav>
        <main>
          <Routes>
            <Route path="/studio" element={<Titled title="Studio" />} />
            <Route path="/gallery" element={<Titled title="Gallery" />} />
            <Route path="/old-studio" element={<Navigate to="/studio" replace />} />
          </Routes>
        </main>
      </>
    );
  }

  it('name the page in the title and move focus to its h1 (not on first load)', () => {
    render(
      <MemoryRouter initialEntries={['/studio']}>
        <Shell />
      </MemoryRouter>,
    );
    expect(document.title).toBe('Studio — Pingvas Studio');
    expect(active()).toBe(document.body);
    const link = screen.getByRole('link', { name: 'Gallery' });
    link.focus();
    fireEvent.click(link);
    expect(document.title).toBe('Gallery — Pingvas Studio');
    expect(active()?.tagName).toBe('H1');
    expect(active()?.textContent).toBe('Gallery');
  });

  it('leave focus alone on a redirect (a replace navigation): the user went nowhere', () => {
    render(
      <MemoryRouter initialEntries={['/old-studio']}>
        <Shell />
      </MemoryRouter>,
    );
    expect(document.title).toBe('Studio — Pingvas Studio');
    expect(active()).toBe(document.body);
  });
});
