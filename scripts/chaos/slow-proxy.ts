import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';

/**
 * A loopback TCP proxy in front of the embedded S3 server: the API presigns URLs for the
 * proxy's address and the bytes pass through unchanged (signatures stay valid). `delayMs`
 * holds every chunk, in both directions, that long after it arrived (chunks keep their
 * order and the delay does not add up across chunks): "S3 is slow".
 */
export interface SlowProxy {
  endpoint: string;
  delayMs: number;
  close(): Promise<void>;
}

export async function startSlowProxy(upstream: string): Promise<SlowProxy> {
  const target = new URL(upstream);
  const sockets = new Set<Socket>();
  const proxy: SlowProxy = { endpoint: '', delayMs: 0, close: async () => undefined };

  const relay = (from: Socket, to: Socket) => {
    let chain: Promise<void> = Promise.resolve();
    from.on('data', (chunk: Buffer) => {
      const due = Date.now() + proxy.delayMs;
      chain = chain.then(async () => {
        const wait = due - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        if (!to.destroyed) to.write(chunk);
      });
    });
    from.on('end', () => {
      void chain.then(() => to.end());
    });
  };

  const server = createServer((client) => {
    const upstreamSocket = createConnection({ host: target.hostname, port: Number(target.port) });
    for (const socket of [client, upstreamSocket]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstreamSocket.destroy();
      });
    }
    relay(client, upstreamSocket);
    relay(upstreamSocket, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.close = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  };
  return proxy;
}
