import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { API_ENV_VARIABLES, loadApiConfig } from './config.js';

const ENV_EXAMPLE = readFileSync(new URL('../../../.env.example', import.meta.url), 'utf8');
const documented = new Set([...ENV_EXAMPLE.matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]));

describe('API config', () => {
  it('.env.example documents every variable the API reads', () => {
    expect(API_ENV_VARIABLES.length).toBeGreaterThan(30);
    expect(API_ENV_VARIABLES.filter((name) => !documented.has(name))).toEqual([]);
  });

  it('stops with one line naming a malformed variable', () => {
    expect(() => loadApiConfig({ API_PORT: 'eighty' })).toThrow(/^config: API_PORT /);
    expect(() => loadApiConfig({ DATABASE_URL: 'not a url' })).toThrow(/^config: DATABASE_URL /);
  });

  it('refuses a CDN without its signing key pair, and upload URLs that live too long', () => {
    expect(() => loadApiConfig({ CDN_BASE_URL: 'https://cdn.example.test' })).toThrow(
      /^config: CDN_KEY_PAIR_ID is required when CDN_BASE_URL is set \(CDN URLs are signed\)$/,
    );
    expect(() => loadApiConfig({ CDN_BASE_URL: 'https://cdn.example.test', CDN_KEY_PAIR_ID: 'K1' }))
      .toThrow(/^config: CDN_PRIVATE_KEY /);
    expect(() => loadApiConfig({ S3_UPLOAD_URL_SECONDS: '3600' })).toThrow(/^config: S3_UPLOAD_URL_SECONDS /);
  });

  it('refuses to start in production without real secrets', () => {
    expect(() => loadApiConfig({ NODE_ENV: 'production' })).toThrow(/^config: SESSION_SECRET is required in production$/);
    expect(() =>
      loadApiConfig({ NODE_ENV: 'production', SESSION_SECRET: 'short', WORKER_TOKEN: 'w', S3_ENDPOINT: 'http://s3' }),
    ).toThrow(/SESSION_SECRET must be at least 32 characters/);
  });

  it('runs in development on defaults, with the local stand-ins switched on', () => {
    const config = loadApiConfig({});
    expect(config.googleEnabled).toBe(false);
    expect(config.lemonSqueezyEnabled).toBe(false);
    expect(config.API_PORT).toBe(3000);
  });
});
