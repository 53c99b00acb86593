import { getEventListeners } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../../api/src/test/harness.js';
import { buildServer } from '../../api/src/server.js';
import { createWorkerApi, type WorkerApi } from './api-client.js';

/** The worker's API client against the real API (fastify on a loopback port), PostgreSQL and Redis. */

let app: TestApp;
let server: Awaited<ReturnType<typeof buildServer>>;
let api: WorkerApi;

beforeAll(async () => {
  app = await createTestApp();
  server = await buildServer(app.deps);
  await server.listen({ port: 0, host: '127.0.0.1' });
  const apiUrl = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
  api = createWorkerApi({ apiUrl, workerToken: app.config.WORKER_TOKEN });
});

afterAll(async () => {
  if (server) {
    const closing = server.close();
    server.server.closeAllConnections();
    await closing;
  }
  await app?.close();
});

const claimInput = { workerId: 'listener-count', engineVersion: 'ref-1', waitMs: 0 };

describe('a signal that outlives its calls', () => {
  it('keeps no abort listener after many claims, answered or refused', async () => {
    const stop = new AbortController();
    for (let i = 0; i < 30; i++) expect(await api.claim.mutate(claimInput, { signal: stop.signal })).toBeNull();
    await expect(api.claim.mutate({ ...claimInput, workerId: ' ' }, { signal: stop.signal })).rejects.toThrow();
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0);
  });

  it('still hangs up a waiting long poll when it aborts', async () => {
    const stop = new AbortController();
    const claim = api.claim.mutate({ ...claimInput, waitMs: 20_000 }, { signal: stop.signal });
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(1);
    stop.abort();
    await expect(claim).rejects.toThrow(/abort/i);
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0);
  });
});
