import WebSocket from 'ws';
import superjson from 'superjson';

export interface LiveSocket {
  ws: WebSocket;
  /** Settles when the socket closes, with the close code and reason the server sent. */
  closed: Promise<{ code: number; reason: string }>;
  /** One tRPC call over the socket; resolves with the response message (result or error). */
  call(method: 'query' | 'mutation' | 'subscription', path: string, input?: unknown): Promise<LiveResponse>;
  /** Sends raw text as one frame. */
  send(text: string): void;
}

export interface LiveResponse {
  id: number | null;
  result?: { type: string; data?: unknown };
  error?: { json: { data: { code: string; httpStatus: number } } };
}

/**
 * A raw tRPC WebSocket client (tRPC's JSON-RPC messages, superjson inputs), so tests see
 * close codes and per-message answers exactly as the server sends them.
 */
export function openLiveSocket(url: string, headers: Record<string, string>): Promise<LiveSocket> {
  const ws = new WebSocket(url, { headers });
  const pending = new Map<number, (message: LiveResponse) => void>();
  let nextId = 1;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.once('close', (code, reason) => {
      // Calls still waiting get no answer: settle them as such rather than hang.
      for (const settle of pending.values()) settle({ id: null });
      pending.clear();
      resolve({ code, reason: reason.toString() });
    });
  });
  ws.on('message', (data) => {
    const text = data.toString();
    if (text === 'PING' || text === 'PONG') return;
    const messages = ([] as LiveResponse[]).concat(JSON.parse(text) as LiveResponse);
    for (const message of messages) {
      if (typeof message.id !== 'number') continue;
      // A subscription answers "started" first; callers want that, later data goes nowhere.
      pending.get(message.id)?.(message);
      pending.delete(message.id);
    }
  });
  const socket: LiveSocket = {
    ws,
    closed,
    call(method, path, input) {
      const id = nextId++;
      let encoded: unknown;
      try {
        encoded = superjson.serialize(input);
      } catch {
        // What superjson refuses to encode (a `__proto__` key) goes as plain JSON, as a hostile client would send it.
        encoded = { json: input };
      }
      const params = { path, input: encoded };
      return new Promise((resolve) => {
        pending.set(id, resolve);
        ws.send(JSON.stringify({ id, method, params }));
      });
    },
    send: (text) => ws.send(text),
  };
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(socket));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once('error', reject);
  });
}
