import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WorkerStatus } from './worker.js';

/** `GET /status` (what the worker is doing) and `GET /healthz` (the process is up), for operators. */
export async function startStatusServer(options: {
  port: number;
  host: string;
  status: () => WorkerStatus;
}): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://worker').pathname;
    const send = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (req.method !== 'GET') return send(405, { error: 'method not allowed' });
    if (path === '/healthz') return send(200, { ok: true });
    if (path === '/status') return send(200, options.status());
    send(404, { error: 'not found' });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}
