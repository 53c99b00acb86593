import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEV_WORKER_TOKEN } from '@pingvas/core';
import { API_ENV_VARIABLES, loadApiConfig } from './config.js';
import { PRODUCTION_ENV } from './test/production-env.test-support.js';

const ENV_EXAMPLE = readFileSync(new URL('../../../.env.example', import.meta.url), 'utf8');
const documented = new Set([...ENV_EXAMPLE.matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]));
const DEV = { NODE_ENV: 'development' };

/** The lines a config refusal prints, or [] when the environment is accepted. */
function refusal(env: NodeJS.ProcessEnv): string[] {
  try {
    loadApiConfig(env);
    return [];
  } catch (error) {
    return (error as Error).message.split('\n');
  }
}

/** Each development default that must stop a start outside development, and the line that names it. */
const INSECURE: [string, Record<string, string>, RegExp][] = [
  ['SESSION_SECRET unset (the repository secret)', { SESSION_SECRET: '' }, /^config: SESSION_SECRET is unset: /],
  [
    'a short SESSION_SECRET',
    { SESSION_SECRET: 's'.repeat(31) },
    /^config: SESSION_SECRET must be at least 32 characters$/,
  ],
  [
    'SESSION_SECRET set to the repository secret',
    { SESSION_SECRET: 'dev-only-session-secret-change-me-0123456789' },
    /^config: SESSION_SECRET is the development value from the repository$/,
  ],
  ['WORKER_TOKEN unset (the repository token)', { WORKER_TOKEN: '' }, /^config: WORKER_TOKEN is unset: /],
  [
    'WORKER_TOKEN set to the repository token',
    { WORKER_TOKEN: DEV_WORKER_TOKEN },
    /^config: WORKER_TOKEN is the development value from the repository$/,
  ],
  ['a short WORKER_TOKEN', { WORKER_TOKEN: 'w'.repeat(31) }, /^config: WORKER_TOKEN must be at least 32 characters$/],
  [
    'no Google (the dev sign-in)',
    { GOOGLE_CLIENT_ID: '' },
    /^config: GOOGLE_CLIENT_ID\/GOOGLE_CLIENT_SECRET are unset: /,
  ],
  [
    'no Lemon Squeezy key (the test checkout)',
    { LEMONSQUEEZY_API_KEY: '' },
    /^config: LEMONSQUEEZY_API_KEY is unset: /,
  ],
  [
    'no webhook secret (the repository secret)',
    { LEMONSQUEEZY_WEBHOOK_SECRET: '' },
    /^config: LEMONSQUEEZY_WEBHOOK_SECRET is required /,
  ],
  [
    'the webhook secret set to the repository secret',
    { LEMONSQUEEZY_WEBHOOK_SECRET: 'dev-only-lemonsqueezy-webhook-secret' },
    /^config: LEMONSQUEEZY_WEBHOOK_SECRET is the development value from the repository$/,
  ],
  ['METRICS_TOKEN unset (open metrics)', { METRICS_TOKEN: '' }, /^config: METRICS_TOKEN is unset: /],
  ['no S3_ENDPOINT (the embedded server)', { S3_ENDPOINT: '' }, /^config: S3_ENDPOINT is unset: /],
  [
    "the embedded server's S3 keys",
    { S3_ACCESS_KEY_ID: 'S3RVER' },
    /^config: S3_ACCESS_KEY_ID\/S3_SECRET_ACCESS_KEY are /,
  ],
];

describe('API config', () => {
  it('.env.example documents every variable the API reads', () => {
    expect(API_ENV_VARIABLES.length).toBeGreaterThan(30);
    expect(API_ENV_VARIABLES.filter((name) => !documented.has(name))).toEqual([]);
  });

  it('stops with one line naming a malformed variable', () => {
    expect(() => loadApiConfig({ API_PORT: 'eighty' })).toThrow(/^config: API_PORT /);
    expect(() => loadApiConfig({ DATABASE_URL: 'not a url' })).toThrow(/^config: DATABASE_URL /);
    expect(() => loadApiConfig({ ...DEV, SESSION_RECHECK_SECONDS: '61' })).toThrow(/^config: SESSION_RECHECK_SECONDS /);
  });

  it('refuses a CDN without its signing key pair, and upload URLs that live too long', () => {
    expect(() => loadApiConfig({ ...DEV, CDN_BASE_URL: 'https://cdn.example.test' })).toThrow(
      /^config: CDN_KEY_PAIR_ID is required when CDN_BASE_URL is set \(CDN URLs are signed\)$/,
    );
    expect(() => loadApiConfig({ ...DEV, CDN_BASE_URL: 'https://cdn.example.test', CDN_KEY_PAIR_ID: 'K1' })).toThrow(
      /^config: CDN_PRIVATE_KEY /,
    );
    expect(() => loadApiConfig({ ...DEV, S3_UPLOAD_URL_SECONDS: '3600' })).toThrow(/^config: S3_UPLOAD_URL_SECONDS /);
  });

  it('runs in explicit development on loopback on defaults, with the local stand-ins switched on', () => {
    for (const env of [DEV, { NODE_ENV: 'test' }, { ...DEV, PUBLIC_URL: 'http://127.0.0.1:5173' }]) {
      const config = loadApiConfig(env);
      expect(config).toMatchObject({
        development: true,
        googleEnabled: false,
        lemonSqueezyEnabled: false,
        API_PORT: 3000,
      });
      expect(config.WORKER_TOKEN).toBe(DEV_WORKER_TOKEN);
    }
  });

  it('outside explicit development, names every development default at once, one line each', () => {
    // Unset NODE_ENV is production, whatever PUBLIC_URL says; development on a public address is refused too.
    for (const env of [
      {},
      { PUBLIC_URL: 'https://studio.example.com' },
      { ...DEV, PUBLIC_URL: 'https://studio.example.com' },
      { ...DEV, PUBLIC_URL: 'http://192.168.1.5:5173' },
      { NODE_ENV: 'production' },
    ]) {
      const lines = refusal(env);
      expect(lines, JSON.stringify(env)).toHaveLength(7);
      for (const [, , line] of INSECURE.filter(([name]) => !/short|webhook|set to/.test(name))) {
        expect(lines, String(line)).toContainEqual(expect.stringMatching(line));
      }
    }
  });

  it('accepts a production environment with nothing left at a development default', () => {
    expect(refusal(PRODUCTION_ENV)).toEqual([]);
    const config = loadApiConfig(PRODUCTION_ENV);
    expect(config).toMatchObject({
      NODE_ENV: 'production',
      development: false,
      googleEnabled: true,
      lemonSqueezyEnabled: true,
    });
  });

  it.each(INSECURE)('refuses %s alone with exactly its line', (_name, change, line) => {
    expect(refusal({ ...PRODUCTION_ENV, ...change })).toEqual([expect.stringMatching(line)]);
  });
});

describe('src/main.ts refuses to start: NODE_ENV unset, PUBLIC_URL https://studio.example.com', () => {
  const apiDir = fileURLToPath(new URL('..', import.meta.url));
  function start(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
    // Vitest runs with NODE_ENV=test: the child must see it unset.
    const { NODE_ENV: _vitest, ...inherited } = process.env;
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: apiDir,
      env: { ...inherited, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
  }

  it.each(INSECURE)('%s → exit 1 with its line', async (_name, change, line) => {
    const { code, stderr } = await start({ ...PRODUCTION_ENV, ...change });
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toEqual([expect.stringMatching(line)]);
  });
});
