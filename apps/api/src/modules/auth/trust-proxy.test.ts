import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { ConfigError, loadApiConfig } from '../../config.js';
import { buildServer } from '../../server.js';
import { createTestApp, type TestApp } from '../../test/harness.js';

/**
 * The client IP behind the per-IP sign-in limit. Without TRUST_PROXY the peer address is the
 * client, whatever X-Forwarded-For says: otherwise anyone could reset their limit with a
 * made-up header on every request.
 */

let app: TestApp;
beforeAll(async () => {
  app = await createTestApp({ SIGNIN_RATE_LIMIT: '2' });
});
afterAll(async () => {
  await app.close();
});

/** The server, plus a probe route that answers with req.ip as fastify resolved it. */
async function serverWith(trustProxy: boolean | string[]): Promise<FastifyInstance> {
  const server = await buildServer({ ...app.deps, config: { ...app.config, TRUST_PROXY: trustProxy } });
  server.get('/test/ip', async (req) => ({ ip: req.ip }));
  return server;
}

const devLogin = (server: FastifyInstance, headers: Record<string, string>, remoteAddress?: string) =>
  server.inject({
    method: 'POST',
    url: '/api/v1/auth/dev-login',
    payload: { email: 'xff@example.test' },
    headers,
    ...(remoteAddress ? { remoteAddress } : {}),
  });

describe('TRUST_PROXY', () => {
  it('is off by default: a spoofed X-Forwarded-For changes neither req.ip nor the sign-in limit', async () => {
    expect(app.config.TRUST_PROXY).toBe(false);
    const server = await serverWith(app.config.TRUST_PROXY);
    try {
      const probe = await server.inject({
        method: 'GET',
        url: '/test/ip',
        headers: { 'x-forwarded-for': '203.0.113.5' },
      });
      expect(probe.json()).toEqual({ ip: '127.0.0.1' });
      const codes = [];
      for (const spoofed of ['203.0.113.1', '203.0.113.2', '203.0.113.3']) {
        codes.push((await devLogin(server, { 'x-forwarded-for': spoofed })).statusCode);
      }
      expect(codes).toEqual([200, 200, 429]);
    } finally {
      await server.close();
    }
  });

  it('believes X-Forwarded-For only when the peer is a listed proxy, and then only the hops after it', async () => {
    const server = await serverWith(['10.0.0.0/8']);
    try {
      const ip = async (xff: string, remoteAddress: string) =>
        (
          await server.inject({ method: 'GET', url: '/test/ip', headers: { 'x-forwarded-for': xff }, remoteAddress })
        ).json().ip;
      expect(await ip('198.51.100.7', '10.1.2.3')).toBe('198.51.100.7');
      // The client prepended its own entry; the proxy appended the address it saw.
      expect(await ip('1.2.3.4, 198.51.100.7', '10.1.2.3')).toBe('198.51.100.7');
      // A client talking to us directly is not a proxy: its header is ignored.
      expect(await ip('198.51.100.7', '192.0.2.9')).toBe('192.0.2.9');

      const codes = [];
      for (const client of ['198.51.100.20', '198.51.100.20', '198.51.100.20', '198.51.100.21']) {
        codes.push((await devLogin(server, { 'x-forwarded-for': client }, '10.9.9.9')).statusCode);
      }
      expect(codes).toEqual([200, 200, 429, 200]);
    } finally {
      await server.close();
    }
  });

  it('parses true/false and lists of IPs, CIDRs and range names; refuses the rest with one line', () => {
    const parse = (TRUST_PROXY: string) => loadApiConfig({ NODE_ENV: 'test', TRUST_PROXY }).TRUST_PROXY;
    expect(parse('true')).toBe(true);
    expect(parse('false')).toBe(false);
    expect(parse('')).toBe(false);
    expect(parse(' 10.0.0.0/8, 127.0.0.1 ,loopback,fd00::/8')).toEqual([
      '10.0.0.0/8',
      '127.0.0.1',
      'loopback',
      'fd00::/8',
    ]);
    for (const bad of ['2', '10.0.0.0/33', 'proxy.example', '10.0.0.1/8/1', ',']) {
      expect(() => parse(bad), bad).toThrow(ConfigError);
      expect(() => parse(bad), bad).toThrow(/^config: TRUST_PROXY /);
    }
  });
});
