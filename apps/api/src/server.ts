import { randomUUID } from 'node:crypto';
import fastifyCookie from '@fastify/cookie';
import { fastifyTRPCPlugin, type FastifyTRPCPluginOptions } from '@trpc/server/adapters/fastify';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { sql } from 'drizzle-orm';
import { HTTP_BODY_LIMIT_BYTES, HTTP_TIMEOUTS, TRPC_MAX_BATCH_SIZE, type HttpTimeouts } from './bounds.js';
import { createContext, createWorkerContext } from './context.js';
import type { AppDeps } from './deps.js';
import { attachLiveEvents } from './live.routes.js';
import { authRoutes } from './modules/auth/auth.routes.js';
import { csrfGuard } from './modules/auth/csrf.js';
import { metricsRoutes } from './modules/metrics/metrics.routes.js';
import { paymentRoutes } from './modules/payments/payments.routes.js';
import { workerRouter, type WorkerRouter } from './modules/worker/worker.router.js';
import { appRouter, type AppRouter } from './app.router.js';

/** `timeouts` is for tests, which cannot wait the real ones out. */
export async function buildServer(deps: AppDeps, timeouts: HttpTimeouts = HTTP_TIMEOUTS): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    genReqId: (req) => (req.headers['x-request-id'] as string | undefined) ?? randomUUID(),
    routerOptions: { maxParamLength: 5000 },
    trustProxy: deps.config.TRUST_PROXY,
    // A slow client cannot hold a connection open by trickling its headers or body.
    requestTimeout: timeouts.requestMs,
    keepAliveTimeout: timeouts.keepAliveMs,
    http: { headersTimeout: timeouts.headersMs, connectionsCheckingInterval: timeouts.checkIntervalMs },
    bodyLimit: HTTP_BODY_LIMIT_BYTES,
  });
  await app.register(fastifyCookie);
  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });
  app.addHook('onRequest', csrfGuard(deps.config));
  metricsRoutes(app, deps);

  app.get('/healthz', async () => ({ ok: true }));
  app.get('/readyz', async (_req, reply) => {
    const checks = await Promise.allSettled([deps.db.execute(sql`select 1`), deps.redis.ping()]);
    const [database, redis] = checks.map((c) => (c.status === 'fulfilled' ? 'ok' : 'unreachable'));
    const ok = database === 'ok' && redis === 'ok';
    return reply.code(ok ? 200 : 503).send({ ok, database, redis });
  });

  await app.register(fastifyTRPCPlugin, {
    prefix: '/trpc',
    trpcOptions: {
      router: appRouter,
      maxBatchSize: TRPC_MAX_BATCH_SIZE,
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
      maxBatchSize: TRPC_MAX_BATCH_SIZE,
      createContext: ({ req }) => createWorkerContext(deps, req),
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
