import { randomUUID } from 'node:crypto';
import fastifyCookie from '@fastify/cookie';
import { fastifyTRPCPlugin, type FastifyTRPCPluginOptions } from '@trpc/server/adapters/fastify';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { sql } from 'drizzle-orm';
import { timingSafeEqual } from 'node:crypto';
import { createContext } from './context.js';
import type { AppDeps } from './deps.js';
import { csrfGuard } from './modules/auth/csrf.js';
import { authRoutes } from './modules/auth/routes.js';
import { paymentRoutes } from './modules/payments/payments.routes.js';
import { attachLiveEvents } from './modules/generation/live.js';
import { metricsRoutes } from './modules/metrics/routes.js';
import { workerRouter, type WorkerRouter } from './modules/worker/worker.router.js';
import { appRouter, type AppRouter } from './router.js';

/** Constant-time comparison of a presented worker token against the configured one. */
export function isWorkerToken(presented: string | undefined, expected: string): boolean {
  if (!presented) return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export async function buildServer(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    genReqId: (req) => (req.headers['x-request-id'] as string | undefined) ?? randomUUID(),
    routerOptions: { maxParamLength: 5000 },
    trustProxy: deps.config.TRUST_PROXY,
  });
  await app.register(fastifyCookie);
  app.addHook('onRequest', async (req, reply) => { reply.header('x-request-id', req.id); });
  app.addHook('onRequest', csrfGuard(deps.config));
  metricsRoutes(app, deps);

  app.get('/healthz', async () => ({ ok: true }));
  app.get('/readyz', async (_req, reply) => {
    const checks = await Promise.allSettled([
      deps.db.execute(sql`select 1`),
      deps.redis.ping(),
    ]);
    const [database, redis] = checks.map((c) => (c.status === 'fulfilled' ? 'ok' : 'unreachable'));
    const ok = database === 'ok' && redis === 'ok';
    return reply.code(ok ? 200 : 503).send({ ok, database, redis });
  });

  await app.register(fastifyTRPCPlugin, {
    prefix: '/trpc',
    trpcOptions: {
      router: appRouter,
      createContext: ({ req, res }) => createContext(deps, req, res),
      onError: ({ error, path }) => {
        if (error.code === 'INTERNAL_SERVER_ERROR') deps.logger.error({ err: error, path }, 'trpc error');
      },
    } satisfies FastifyTRPCPluginOptions<AppRouter>['trpcOptions'],
  });

  await app.register(fastifyTRPCPlugin, {
    prefix: '/internal/trpc',
    trpcOptions: {
      router: workerRouter,
      createContext: ({ req }) => {
        const token = req.headers.authorization?.match(/^Bearer\s+(.+)$/i)?.[1];
        return { deps, user: null, isWorker: isWorkerToken(token, deps.config.WORKER_TOKEN), req };
      },
      onError: ({ error, path }) => {
        if (error.code === 'INTERNAL_SERVER_ERROR') deps.logger.error({ err: error, path }, 'internal trpc error');
      },
    } satisfies FastifyTRPCPluginOptions<WorkerRouter>['trpcOptions'],
  });

  await app.register(async (scope) => authRoutes(scope, deps));
  await app.register(async (scope) => paymentRoutes(scope, deps));
  attachLiveEvents(app, deps);
  return app;
}
