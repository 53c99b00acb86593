import postgres from 'postgres';
import type { Cluster } from './cluster.js';
import type { Random } from './random.js';

/**
 * Breaks things at random moments while traffic flows. Each fault heals itself (a killed
 * process is started again, a stopped worker continued, Redis started again empty, S3 fast
 * again); `stop` waits for the faults in progress to finish healing.
 */

export const FAULT_KINDS = [
  'kill-api',
  'kill-worker',
  'stop-worker',
  'restart-redis',
  'pg-terminate',
  'slow-s3',
] as const;
export type InjectedFault = (typeof FAULT_KINDS)[number];

export class Injector {
  readonly counts: Record<InjectedFault, number> = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<
    InjectedFault,
    number
  >;
  private readonly healing = new Set<Promise<void>>();
  private readonly admin: postgres.Sql;
  /** The first faults go through every kind once (in a seeded order), so a short run sees each. */
  private readonly firstRound: InjectedFault[];
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly cluster: Cluster,
    private readonly random: Random,
    private readonly meanIntervalMs: number,
  ) {
    this.admin = postgres(cluster.database.adminUrl, { max: 1, onnotice: () => {} });
    this.firstRound = random.shuffle(FAULT_KINDS);
  }

  start(): void {
    const next = () => {
      if (this.stopped) return;
      this.timer = setTimeout(
        () => {
          const firstRound = this.firstRound.length > 0;
          const kind = this.firstRound.shift() ?? this.random.pick(FAULT_KINDS);
          const healed = this.inject(kind)
            .then((injected) => {
              // A first-round kind that had to wait (no second API alive, no worker to stop) comes again.
              if (!injected && firstRound) this.firstRound.push(kind);
            })
            .catch((err: unknown) => console.error(`chaos: ${kind} failed: ${(err as Error).message}`));
          this.healing.add(healed);
          void healed.finally(() => this.healing.delete(healed));
          next();
        },
        this.random.int(this.meanIntervalMs / 2, (this.meanIntervalMs * 3) / 2),
      );
    };
    next();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    while (this.healing.size > 0) await Promise.all([...this.healing]);
    await this.admin.end({ timeout: 5 });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  /** Injects one fault and waits until it healed; false when the moment did not allow it (nothing injected). */
  private async inject(kind: InjectedFault): Promise<boolean> {
    const { cluster, random } = this;
    switch (kind) {
      case 'kill-api': {
        // Never all at once: with one of several APIs left alive the fault waits for a later turn.
        // A one-API run does kill its only API: clients then meet an outage, and it comes back.
        const live = cluster.liveApis();
        if (live.length < Math.min(2, cluster.apis.length)) return false;
        const api = random.pick(live);
        this.counts[kind] += 1;
        await cluster.kill(api);
        await this.sleep(random.int(200, 1500));
        await cluster.startApi(api);
        return true;
      }
      case 'kill-worker': {
        const worker = random.pick(cluster.workers.filter((w) => !w.stopped));
        if (!worker) return false;
        this.counts[kind] += 1;
        await cluster.kill(worker);
        cluster.startWorker(worker);
        return true;
      }
      case 'stop-worker': {
        // A zombie: it sleeps past its lease, wakes up and tries to finish a run that is no longer its own.
        const worker = random.pick(cluster.workers);
        if (!worker || !cluster.pause(worker)) return false;
        this.counts[kind] += 1;
        await this.sleep(cluster.options.leaseSeconds * 1000 + random.int(1000, 3000));
        cluster.resume(worker);
        return true;
      }
      case 'restart-redis': {
        this.counts[kind] += 1;
        await cluster.redis.kill();
        await this.sleep(random.int(100, 1000));
        await cluster.redis.start();
        return true;
      }
      case 'pg-terminate': {
        this.counts[kind] += 1;
        // Only this run's database, and never this connection itself.
        await this.admin`
          select pg_terminate_backend(pid) from pg_stat_activity
          where datname = current_database() and pid <> pg_backend_pid()`;
        return true;
      }
      case 'slow-s3': {
        if (cluster.proxy.delayMs > 0) return false;
        this.counts[kind] += 1;
        cluster.proxy.delayMs = random.int(200, 1500);
        await this.sleep(random.int(3000, 8000));
        cluster.proxy.delayMs = 0;
        return true;
      }
    }
  }
}
