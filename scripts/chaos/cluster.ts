import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startEmbeddedS3, type EmbeddedS3 } from '@pingvas/local-services';
import { createTestDatabase, startRedisServer, type RedisServer, type TestDatabase } from '@pingvas/testkit';
import { startSlowProxy, type SlowProxy } from './slow-proxy.js';

/**
 * What the chaos run starts and breaks: its own redis-server (nothing on disk), its own
 * database (a copy of the migrated template, dropped at the end), the embedded S3 behind a
 * slow-able proxy, N API processes (apps/api/src/main.ts, as production runs them) and M GPU
 * workers (apps/gpu-worker/src/main.ts) on the reference engine. Nothing else on the machine
 * is touched: other test files keep using the shared PostgreSQL and Redis undisturbed.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ENGINE_WRAPPER = fileURLToPath(new URL('./engine-faults.sh', import.meta.url));
const REFERENCE_ENGINE = join(ROOT, 'apps/gpu-worker/reference-engine/bin/refengine');

export const WEBHOOK_SECRET = 'chaos-webhook-secret-0123456789abcdef';
export const VARIANT = { starter: 7001, pro: 7002, 1000: 7101, 5000: 7105, 10000: 7110 } as const;

export interface ClusterOptions {
  apis: number;
  workers: number;
  runDir: string;
  /** The API's LEASE_SECONDS: a SIGSTOPped worker must sleep past it. */
  leaseSeconds: number;
}

/** One process slot (an API on a fixed port, or a worker): killed and started again by the injector. */
export interface Slot {
  name: string;
  child: ChildProcess | null;
  /** Set while the process is SIGSTOPped. */
  stopped: boolean;
  generation: number;
  /** Set while the run itself is ending the process (a fault or the shutdown): not a crash. */
  expectingExit: boolean;
}

export interface ApiSlot extends Slot {
  port: number;
  url: string;
  /** The current process answered /healthz (set again false when it exits). */
  ready: boolean;
}

function alive(child: ChildProcess | null): child is ChildProcess {
  return child !== null && child.exitCode === null && child.signalCode === null;
}

export class Cluster {
  readonly apis: ApiSlot[] = [];
  readonly workers: Slot[] = [];
  /** Processes that died on their own ("api-0 exit 1"); each is started again, as a supervisor would. */
  readonly crashes: string[] = [];
  private shuttingDown = false;

  private constructor(
    readonly options: ClusterOptions,
    readonly redis: RedisServer,
    readonly database: TestDatabase,
    readonly s3: EmbeddedS3,
    readonly proxy: SlowProxy,
  ) {}

  static async start(options: ClusterOptions): Promise<Cluster> {
    mkdirSync(options.runDir, { recursive: true });
    const [redis, database, s3] = await Promise.all([startRedisServer(), createTestDatabase(), startEmbeddedS3()]);
    const proxy = await startSlowProxy(s3.endpoint);
    const cluster = new Cluster(options, redis, database, s3, proxy);
    for (let i = 0; i < options.apis; i += 1) {
      const port = await freePort();
      cluster.apis.push({
        name: `api-${i}`,
        port,
        url: `http://127.0.0.1:${port}`,
        child: null,
        stopped: false,
        generation: 0,
        expectingExit: false,
        ready: false,
      });
    }
    await Promise.all(cluster.apis.map((api) => cluster.startApi(api)));
    for (let i = 0; i < options.workers; i += 1)
      cluster.workers.push({ name: `worker-${i}`, child: null, stopped: false, generation: 0, expectingExit: false });
    for (const worker of cluster.workers) cluster.startWorker(worker);
    return cluster;
  }

  private spawnLogged(slot: Slot, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
    slot.generation += 1;
    const log = createWriteStream(join(this.options.runDir, `${slot.name}.log`), { flags: 'a' });
    log.write(`--- start #${slot.generation} at ${new Date().toISOString()}\n`);
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
      cwd: ROOT,
      // A clean environment: nothing from the caller's shell (SMTP, Google keys…) leaks in.
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
    child.once('exit', (code, signal) => {
      log.end(`--- exit ${code ?? signal} at ${new Date().toISOString()}\n`);
      if (slot.child !== child || slot.expectingExit || this.shuttingDown) return;
      this.crashes.push(`${slot.name} exit ${code ?? signal} (see ${slot.name}.log)`);
      setTimeout(() => {
        if (!this.shuttingDown && slot.child === child) void this.restart(slot);
      }, 1000);
    });
    slot.child = child;
    slot.stopped = false;
    slot.expectingExit = false;
    return child;
  }

  async startApi(api: ApiSlot): Promise<void> {
    api.ready = false;
    const child = this.spawnLogged(api, ['apps/api/src/main.ts'], {
      NODE_ENV: 'development',
      LOG_LEVEL: 'warn',
      API_PORT: String(api.port),
      API_HOST: '127.0.0.1',
      PUBLIC_URL: api.url,
      DATABASE_URL: this.database.runtimeUrl,
      REDIS_URL: this.redis.url,
      S3_ENDPOINT: this.proxy.endpoint,
      S3_BUCKET: this.s3.bucket,
      LEASE_SECONDS: String(this.options.leaseSeconds),
      RECONCILE_INTERVAL_MS: '1000',
      JOB_MAX_RUN_SECONDS: '120',
      GENERATION_RATE_LIMIT: '100000',
      SIGNIN_RATE_LIMIT: '100000',
      LEMONSQUEEZY_WEBHOOK_SECRET: WEBHOOK_SECRET,
      LEMONSQUEEZY_VARIANT_STARTER: String(VARIANT.starter),
      LEMONSQUEEZY_VARIANT_PRO: String(VARIANT.pro),
      LEMONSQUEEZY_VARIANT_PACK_1000: String(VARIANT[1000]),
      LEMONSQUEEZY_VARIANT_PACK_5000: String(VARIANT[5000]),
      LEMONSQUEEZY_VARIANT_PACK_10000: String(VARIANT[10000]),
      MAIL_DIR: join(this.options.runDir, 'mail'),
    });
    for (let i = 0; ; i += 1) {
      if (!alive(child))
        throw new Error(`${api.name} exited while starting (see ${this.options.runDir}/${api.name}.log)`);
      const up = await fetch(`${api.url}/healthz`, { signal: AbortSignal.timeout(2000) }).then(
        (r) => r.ok,
        () => false,
      );
      if (up) {
        api.ready = alive(child);
        child.once('exit', () => {
          if (api.child === child) api.ready = false;
        });
        return;
      }
      if (i > 600) throw new Error(`${api.name} did not answer /healthz within a minute`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  startWorker(worker: Slot): void {
    const index = this.workers.indexOf(worker);
    this.spawnLogged(worker, ['apps/gpu-worker/src/main.ts'], {
      NODE_ENV: 'development',
      LOG_LEVEL: 'warn',
      // Each worker talks to one API; a killed API comes back on the same port.
      API_URL: this.apis[index % this.apis.length]!.url,
      ENGINE_BIN: ENGINE_WRAPPER,
      ENGINE_NAME: 'reference',
      CHAOS_ENGINE_BIN: REFERENCE_ENGINE,
      CHAOS_RUN_DIR: this.options.runDir,
      REFENGINE_STEP_MS: '40',
      ENGINE_TIMEOUT_SECONDS: '10',
      WORKER_GRACE_SECONDS: '2',
      WORKER_ID: `chaos-${worker.name}-${worker.generation + 1}`,
      WORKER_STATUS_PORT: '0',
      WORKER_CLAIM_WAIT_MS: '5000',
    });
  }

  private async restart(slot: Slot): Promise<void> {
    const api = this.apis.find((candidate) => candidate === slot);
    if (api)
      await this.startApi(api).catch((err: unknown) =>
        console.error(`chaos: ${slot.name} did not come back: ${(err as Error).message}`),
      );
    else this.startWorker(slot);
  }

  /** SIGKILLs a slot's process and waits until it is gone (a stopped one is killed too). */
  async kill(slot: Slot): Promise<void> {
    const child = slot.child;
    if (!alive(child)) return;
    slot.expectingExit = true;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
    slot.stopped = false;
  }

  pause(slot: Slot): boolean {
    if (!alive(slot.child) || slot.stopped) return false;
    slot.child.kill('SIGSTOP');
    slot.stopped = true;
    return true;
  }

  resume(slot: Slot): void {
    if (!alive(slot.child) || !slot.stopped) return;
    slot.child.kill('SIGCONT');
    slot.stopped = false;
  }

  /** Everything running and awake again (the injector has stopped). */
  async heal(): Promise<void> {
    this.proxy.delayMs = 0;
    await this.redis.start(); // a no-op while its process lives
    for (const worker of this.workers) {
      this.resume(worker);
      if (!alive(worker.child)) this.startWorker(worker);
    }
    await Promise.all(this.apis.filter((api) => !alive(api.child)).map((api) => this.startApi(api)));
  }

  /** The APIs up and answering now (not one still starting). */
  liveApis(): ApiSlot[] {
    return this.apis.filter((api) => api.ready && alive(api.child));
  }

  /** Ends engines whose worker was SIGKILLed (a hung one would wait forever). */
  private killStrayEngines(): void {
    let pids: string[];
    try {
      pids = readdirSync(join(this.options.runDir, 'engines'));
    } catch {
      return;
    }
    for (const pid of pids) {
      try {
        if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('refengine')) continue;
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  async stop(): Promise<void> {
    this.shuttingDown = true;
    await Promise.all(
      [...this.workers, ...this.apis].map(async (slot) => {
        this.resume(slot);
        const child = slot.child;
        if (!alive(child)) return;
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(force);
      }),
    );
    this.killStrayEngines();
    await this.proxy.close();
    await Promise.allSettled([this.redis.stop(), this.s3.close(), this.database.drop()]);
  }
}
