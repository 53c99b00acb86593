import { useSyncExternalStore } from 'react';
import type { JobEvent } from '@pingvas/core';
import { cardFromView, reduceJobEvent, type JobCardState, type JobViewLike } from '../lib/jobCard.js';

export interface JobEntry {
  card: JobCardState;
  prompt: string;
  model: string;
  width: number;
  height: number;
  /** txt2img, img2img, inpaint or upscale. */
  kind: string;
  /** Images the job makes (a batch: up to 4). */
  count: number;
  estimatedCredits: number;
  createdAt: number;
}

/**
 * The job cards of this browser tab, newest first. Kept outside React so a card keeps its
 * image and outcome when the user visits the gallery and comes back (the onJob snapshot
 * says a job completed, but not which image it made).
 */
let entries: JobEntry[] = [];
/** Cards the user put away: the server's recent-jobs list must not bring them back. */
const dismissed = new Set<string>();
const listeners = new Set<() => void>();

function commit(next: JobEntry[]): void {
  entries = next;
  for (const listener of listeners) listener();
}

function update(jobId: string, fn: (card: JobCardState) => JobCardState): void {
  let changed = false;
  const next = entries.map((entry) => {
    if (entry.card.jobId !== jobId) return entry;
    const card = fn(entry.card);
    if (card === entry.card) return entry;
    changed = true;
    return { ...entry, card };
  });
  if (changed) commit(next);
}

export const jobsStore = {
  add(entry: JobEntry): void {
    commit([entry, ...entries.filter((e) => e.card.jobId !== entry.card.jobId)]);
  },
  /** Adds jobs the server knows about (e.g. from another tab) without touching known ones. */
  merge(known: JobEntry[]): void {
    const have = new Set(entries.map((e) => e.card.jobId));
    const fresh = known.filter((e) => !have.has(e.card.jobId) && !dismissed.has(e.card.jobId));
    if (fresh.length === 0) return;
    commit([...entries, ...fresh].sort((a, b) => b.createdAt - a.createdAt));
  },
  apply(event: JobEvent): void {
    update(event.jobId, (card) => reduceJobEvent(card, event));
  },
  /** The job as generation.get reports it (no live events, or a finished job's image). */
  applyView(view: JobViewLike): void {
    update(view.id, (card) => cardFromView(card, view));
  },
  remove(jobId: string): void {
    dismissed.add(jobId);
    commit(entries.filter((e) => e.card.jobId !== jobId));
  },
  clearFinished(): void {
    const [live, finished] = [
      entries.filter((e) => e.card.status === 'pending' || e.card.status === 'in_progress'),
      entries.filter((e) => e.card.status !== 'pending' && e.card.status !== 'in_progress'),
    ];
    for (const entry of finished) dismissed.add(entry.card.jobId);
    commit(live);
  },
  subscribe(listener: () => void): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
  snapshot(): JobEntry[] {
    return entries;
  },
};

export function useJobs(): JobEntry[] {
  return useSyncExternalStore(jobsStore.subscribe, jobsStore.snapshot, jobsStore.snapshot);
}
