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
