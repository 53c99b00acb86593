import { DomainError } from '@pingvas/core';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * What /metrics exposes (README.md lists every metric). Each AppDeps gets its own Registry,
 * so several apps in one process (tests, or the reconciler's extra replicas) never collide
 * on prom-client's global default registry. The one exception is the ledger counter: the
 * ledger functions see only a transaction, not deps, so it is one process-wide counter
 * that every registry exposes (what the process did, whichever app asked).
 */

export const LEDGER_OPERATIONS = [
  'grant',
  'set_subscription_credits',
  'revoke_purchased',
  'hold',
  'capture',
  'release',
] as const;
export type LedgerOperation = (typeof LEDGER_OPERATIONS)[number];
/** applied: written in the caller's transaction; replayed: the key was seen before; refused: a domain refusal; error: anything else. */
export type LedgerOutcome = 'applied' | 'replayed' | 'refused' | 'error';

const ledgerOperations = new Counter({
  name: 'pingvas_ledger_operations_total',
  help: 'Credit ledger operations by operation and outcome (applied, replayed, refused, error).',
  labelNames: ['operation', 'outcome'] as const,
  registers: [],
});

export interface Metrics {
  registry: Registry;
  queueDepth: Gauge<'tier'>;
  jobs: Gauge<'state'>;
  /** 1 when the collector's last scrape-time read worked, else 0 (its gauge is then left empty). */
  collectorUp: Gauge<'collector'>;
  jobDuration: Histogram;
  engineDuration: Histogram;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  openWebSockets: Gauge;
  /** This replica's own count of finished jobs, used only while Redis (which holds the shared one) is unreachable. */
  finishedJobs: { readAt: number; counts: Map<string, number> } | null;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });
  registry.registerMetric(ledgerOperations);
  return {
    registry,
    queueDepth: new Gauge({
      name: 'pingvas_queue_depth',
      help: 'Jobs waiting in the Redis dispatch queue, by the tier (priority band) they were queued with.',
      labelNames: ['tier'] as const,
      registers,
    }),
    jobs: new Gauge({
      name: 'pingvas_jobs',
      help: 'Generation jobs in PostgreSQL by state (finished states are re-read at most every METRICS_FINISHED_JOBS_TTL_SECONDS).',
      labelNames: ['state'] as const,
      registers,
    }),
    collectorUp: new Gauge({
      name: 'pingvas_metrics_collector_up',
      help: 'Whether the scrape-time read of a collector (queue, jobs) worked.',
      labelNames: ['collector'] as const,
      registers,
    }),
    jobDuration: new Histogram({
      name: 'pingvas_job_duration_seconds',
      help: 'Completed jobs: from creation to completion (queue wait included).',
      buckets: [1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    }),
    engineDuration: new Histogram({
      name: 'pingvas_engine_duration_seconds',
      help: 'Completed jobs: engine seconds the worker reported (what the user is charged for).',
      buckets: [1, 2, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300],
      registers,
    }),
    httpDuration: new Histogram({
      name: 'pingvas_http_request_duration_seconds',
      help: 'HTTP requests by method, route pattern and status code.',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    openWebSockets: new Gauge({
      name: 'pingvas_open_websockets',
      help: 'Live-event WebSocket connections open on this replica.',
      registers,
    }),
    finishedJobs: null,
  };
}

/** A job completed (worker.complete, first time): total time since it was created, and its engine time. */
export function observeJobCompleted(metrics: Metrics, job: { createdAt: Date; engineSeconds: number }): void {
  metrics.jobDuration.observe(Math.max(0, (Date.now() - job.createdAt.getTime()) / 1000));
  metrics.engineDuration.observe(job.engineSeconds);
}

function outcomeOf(result: unknown): LedgerOutcome {
  if (result === null) return 'refused';
  const entry = (result as { entry?: { replayed?: boolean } }).entry ?? (result as { replayed?: boolean });
  return entry.replayed ? 'replayed' : 'applied';
}

/**
 * Wraps a ledger operation so each call is counted by outcome: a replay answers with the
 * first entry (`replayed: true`), a release that finds the hold already closed answers
 * null, and a domain refusal (PAYMENT_REQUIRED, CONFLICT, NOT_FOUND, a bad amount) throws.
 */
export function countedLedgerOperation<A extends unknown[], R>(
  operation: LedgerOperation,
  fn: (...args: A) => Promise<R>,
): (...args: A) => Promise<R> {
  return async (...args: A) => {
    try {
      const result = await fn(...args);
      ledgerOperations.inc({ operation, outcome: outcomeOf(result) });
      return result;
    } catch (err) {
      ledgerOperations.inc({
        operation,
        outcome: err instanceof DomainError || err instanceof RangeError ? 'refused' : 'error',
      });
      throw err;
    }
  };
}
