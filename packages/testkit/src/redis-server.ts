import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort } from '@pingvas/local-services';

/**
 * A private `redis-server` process (the installed binary) on a free loopback port, keeping
 * nothing on disk, like production's cache-only Redis. For tests that break Redis (FLUSHALL,
 * a restart) without touching the shared one other test files use.
 */
export interface RedisServer {
  url: string;
  port: number;
  /** Kills the server (SIGKILL) and waits until it is gone; its data is lost. */
  kill(): Promise<void>;
  /** Starts it again, empty, on the same port; resolves once it answers. */
  start(): Promise<void>;
  /** kill() then start(). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const REDIS_SERVER_BIN = process.env.REDIS_SERVER_BIN ?? 'redis-server';

async function answers(port: number): Promise<boolean> {
  const probe = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

export async function startRedisServer(options: { port?: number } = {}): Promise<RedisServer> {
  const port = options.port ?? (await freePort());
  let child: ChildProcess | null = null;

  const start = async () => {
    if (child) return;
    const started = spawn(
      REDIS_SERVER_BIN,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'no',
        '--loglevel',
        'warning',
      ],
      { stdio: 'ignore' },
    );
    child = started;
    let failure: Error | null = null;
    started.once('error', (err) => {
      failure = err;
    });
    started.once('exit', () => {
      if (child === started) child = null;
    });
    for (let i = 0; ; i += 1) {
      if (failure) throw new Error(`${REDIS_SERVER_BIN} could not start: ${(failure as Error).message}`);
      if (started.exitCode !== null)
        throw new Error(`${REDIS_SERVER_BIN} exited with ${started.exitCode} (port ${port} taken?)`);
      if (await answers(port)) return;
      if (i > 200) throw new Error(`${REDIS_SERVER_BIN} did not answer on port ${port}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  };
  const kill = async () => {
    const running = child;
    if (!running) return;
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
    running.kill('SIGKILL');
    await exited;
    child = null;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kill,
    start,
    async restart() {
      await kill();
      await start();
    },
    stop: kill,
  };
}
