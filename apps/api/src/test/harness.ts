import { startEmbeddedS3, type EmbeddedS3 } from '@pingvas/local-services';
import { createTestDatabase, createTestRedis, type TestDatabase, type TestRedis } from '@pingvas/testkit';
import { schema, withSystem } from '@pingvas/db';
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { loadApiConfig, type ApiConfig } from '../config.js';
import type { AppDeps } from '../deps.js';
import { createAppDeps, closeAppDeps } from '../deps.js';
import type { Context, SessionUser } from '../context.js';
import { createCallerFactory } from '../trpc.js';
import { appRouter } from '../app.router.js';
import { workerRouter } from '../modules/worker/worker.router.js';
import type { Tier } from '@pingvas/core';
import { eq } from 'drizzle-orm';
import { upsertUser } from '../modules/auth/auth.service.js';

export interface TestApp {
  deps: AppDeps;
  config: ApiConfig;
  database: TestDatabase;
  redis: TestRedis;
  s3: EmbeddedS3;
  /** A tRPC caller acting as this user (or signed out with null). */
  callerFor(user: SessionUser | null): ReturnType<typeof createAppCaller>;
  /** A caller on the internal router, as a GPU worker with the token. */
  workerCaller(): ReturnType<typeof createWorkerCaller>;
  createUser(options?: { email?: string; tier?: Tier }): Promise<SessionUser>;
  close(): Promise<void>;
}

const createAppCaller = createCallerFactory(appRouter);
const createWorkerCaller = createCallerFactory(workerRouter);

/**
 * Real PostgreSQL (a fresh database), real Redis (a private key prefix) and the embedded
 * S3 server, wired exactly as the API wires them. One per test file.
 */
export async function createTestApp(env: Record<string, string> = {}): Promise<TestApp> {
  const [database, redis, s3] = await Promise.all([createTestDatabase(), createTestRedis(), startEmbeddedS3()]);
  const config = loadApiConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: database.runtimeUrl,
    REDIS_URL: redis.url,
    REDIS_PREFIX: redis.prefix,
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: s3.bucket,
    DISABLE_BACKGROUND: 'true',
    // Scenario tests make many calls as one user; the per-user mutation limit has tests of its own.
    MUTATION_RATE_LIMIT: '100000',
    ...env,
  });
  const deps = createAppDeps(config, pino({ level: 'silent' }));
  const ctx = (user: SessionUser | null, isWorker = false): Context => ({ deps, user, isWorker });
  return {
    deps,
    config,
    database,
    redis,
    s3,
    callerFor: (user) => createAppCaller(ctx(user)),
    workerCaller: () => createWorkerCaller(ctx(null, true)),
    async createUser(options = {}) {
      const email = options.email ?? `user-${randomUUID()}@example.test`;
      // The same path as sign-in; a paid tier is then set as a subscription would set it.
      const user = await upsertUser(deps.db, { email });
      const tier = options.tier ?? 'free';
      if (tier !== user.tier) {
        await withSystem(deps.db, (tx) => tx.update(schema.users).set({ tier }).where(eq(schema.users.id, user.id)));
      }
      return { id: user.id, email: user.email, tier, sessionVersion: user.sessionVersion };
    },
    async close() {
      await closeAppDeps(deps);
      await Promise.all([database.drop(), redis.cleanup(), s3.close()]);
    },
  };
}
