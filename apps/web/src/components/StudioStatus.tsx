import { useEffect, useRef, useState } from 'react';
import type { JobEntry } from '../app/jobsStore.js';
import { announceJobs } from '../lib/announcements.js';
import type { JobCardState } from '../lib/jobCard.js';

/**
 * The studio's one polite status region: queued, progress milestones, ready, failed. The
 * jobs on screen when it mounts are taken as already known, so coming back to the studio
 * does not read out old news.
 */
export function StudioStatus({ jobs }: { jobs: readonly JobEntry[] }) {
  const seen = useRef<Map<string, JobCardState> | null>(null);
  seen.current ??= new Map(jobs.map((entry) => [entry.card.jobId, entry.card]));
  const [message, setMessage] = useState('');

  useEffect(() => {
    const text = announceJobs(seen.current!, jobs);
    seen.current = new Map(jobs.map((entry) => [entry.card.jobId, entry.card]));
    if (text) setMessage(text);
  }, [jobs]);

  return (
    <p role="status" className="sr-only" data-testid="studio-status">
      {message}
    </p>
  );
}
