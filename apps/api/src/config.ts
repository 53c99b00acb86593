import { isIP } from 'node:net';
import { z } from 'zod';
import {
  ConfigError,
  DEV_WORKER_TOKEN,
  isExplicitDevelopment,
  MIN_SECRET_LENGTH,
  parseEnv,
  refuseInsecureSettings,
} from '@pingvas/core';
import { DEFAULT_DATABASE_URL } from '@pingvas/db';

const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
const optionalString = z
  .string()
  .trim()
  .optional()
  .transform((v) => (v ? v : undefined));
const optionalInt = z.coerce.number().int().positive().optional();

/** proxy-addr's names for address ranges, which fastify's trustProxy accepts besides IPs and CIDRs. */
const PROXY_RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);
const isProxyAddress = (entry: string) => {
  if (PROXY_RANGE_NAMES.has(entry)) return true;
  const [ip = '', bits, ...rest] = entry.split('/');
  const family = isIP(ip);
  if (!family || rest.length > 0) return false;
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
};
/**
 * fastify's trustProxy: true/false, or a comma list of proxy IPs, CIDRs and range names. Not a
 * hop count: fastify 5 no longer honours one (a number trusts nobody, since counting hops
 * cannot tell a proxy from a client that sent enough X-Forwarded-For entries itself).
 */
const trustProxy = z
  .string()
  .trim()
  .transform((v, ctx): boolean | string[] => {
    if (v === '' || v === 'true' || v === 'false') return v === 'true';
    if (/^\d+$/.test(v)) {
      ctx.addIssue({
        code: 'custom',
        message:
          "hop counts are not supported: list the proxies' IPs or CIDRs (or true behind a proxy that overwrites X-Forwarded-For)",
      });
      return z.NEVER;
    }
    const entries = v
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean);
    const bad = entries.find((e) => !isProxyAddress(e));
    if (entries.length === 0 || bad !== undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `must be true, false or a comma list of IPs/CIDRs${bad ? ` (not "${bad}")` : ''}`,
      });
      return z.NEVER;
    }
    return entries;
  });

const DEV_SESSION_SECRET = 'dev-only-session-secret-change-me-0123456789';
/** The embedded S3 server's fixed credentials. */
const DEV_S3_KEY = 'S3RVER';
const DEV_LEMONSQUEEZY_WEBHOOK_SECRET = 'dev-only-lemonsqueezy-webhook-secret';

/** Every variable the API reads. `.env.example` documents each one. */
const apiEnvSchema = z
  .object({
    /** Unset means production: development defaults need NODE_ENV=development (or test) and a loopback PUBLIC_URL. */
    NODE_ENV: z.enum(['development', 'test', 'production']).default('production'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    API_PORT: z.coerce.number().int().min(0).max(65535).default(3000),
    API_HOST: z.string().default('127.0.0.1'),
    PUBLIC_URL: z.url().default('http://localhost:5173'),
    DATABASE_URL: z.url().default(DEFAULT_DATABASE_URL),
    REDIS_URL: z.url().default('redis://127.0.0.1:6379'),
    /** Prepended to every Redis key and channel: lets tests and several studios share one Redis. */
    REDIS_PREFIX: z.string().default(''),
    SESSION_SECRET: optionalString,
    SESSION_TTL_HOURS: z.coerce
      .number()
      .positive()
      .default(24 * 30),
    WORKER_TOKEN: optionalString,
    GOOGLE_CLIENT_ID: optionalString,
    GOOGLE_CLIENT_SECRET: optionalString,
    /** Google's OAuth endpoints; tests point them at a fake provider on loopback. */
    GOOGLE_AUTH_URL: z.url().default('https://accounts.google.com/o/oauth2/v2/auth'),
    GOOGLE_TOKEN_URL: z.url().default('https://oauth2.googleapis.com/token'),
    GOOGLE_JWKS_URL: z.url().default('https://www.googleapis.com/oauth2/v3/certs'),
    /** The `iss` an ID token must carry. */
    GOOGLE_ISSUER: z.string().default('https://accounts.google.com'),
    /** Sign-in requests (Google login, callback, dev login) allowed per client IP and route per window. */
    SIGNIN_RATE_LIMIT: z.coerce.number().int().positive().default(20),
    SIGNIN_RATE_WINDOW_SECONDS: z.coerce.number().int().positive().default(60),
    LEMONSQUEEZY_API_URL: z.url().default('https://api.lemonsqueezy.com'),
    LEMONSQUEEZY_API_KEY: optionalString,
    LEMONSQUEEZY_STORE_ID: optionalString,
    LEMONSQUEEZY_WEBHOOK_SECRET: optionalString,
    LEMONSQUEEZY_VARIANT_STARTER: optionalInt,
    LEMONSQUEEZY_VARIANT_PRO: optionalInt,
    LEMONSQUEEZY_VARIANT_PACK_1000: optionalInt,
    LEMONSQUEEZY_VARIANT_PACK_5000: optionalInt,
    LEMONSQUEEZY_VARIANT_PACK_10000: optionalInt,
    /** How long a call to the Lemon Squeezy API may take before the user is told it is unavailable. */
    LEMONSQUEEZY_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
    /** Apply `test_mode` webhooks in production (a staging store); otherwise they are recorded with no effect. */
    LEMONSQUEEZY_ACCEPT_TEST_MODE: bool.default(false),
    S3_ENDPOINT: optionalString,
    S3_REGION: z.string().default('us-east-1'),
    S3_BUCKET: z.string().default('pingvas'),
    S3_ACCESS_KEY_ID: z.string().default(DEV_S3_KEY),
    S3_SECRET_ACCESS_KEY: z.string().default(DEV_S3_KEY),
    S3_FORCE_PATH_STYLE: bool.default(true),
    /** Seconds a presigned GET URL (gallery, download) stays valid. */
    S3_PRESIGN_SECONDS: z.coerce.number().int().positive().default(900),
    /** Seconds a worker's presigned PUT URL stays valid; workers ask for one right before each upload. */
    S3_UPLOAD_URL_SECONDS: z.coerce.number().int().min(10).max(900).default(120),
    /** A CDN in front of the bucket. Its URLs are signed (CloudFront canned policy): both key variables required. */
    CDN_BASE_URL: optionalString,
    CDN_KEY_PAIR_ID: optionalString,
    /** PEM of the RSA private key whose public half the CDN trusts (`\n` escapes allowed). */
    CDN_PRIVATE_KEY: optionalString,
    /** Seconds a signed CDN URL stays valid (rounded up to 5 min): how long an unpublished board's links still work. */
    CDN_URL_SECONDS: z.coerce
      .number()
      .int()
      .positive()
      .max(7 * 24 * 3600)
      .default(3600),
    /** How often each API replica looks for objects of attempts that never completed (and deletes them). */
    ORPHAN_SWEEP_INTERVAL_SECONDS: z.coerce.number().int().positive().default(900),
    /** How often each API replica deletes expired uploads (never completed, refused, or unused for a day). */
    UPLOAD_SWEEP_INTERVAL_SECONDS: z.coerce.number().int().positive().default(300),
    SMTP_URL: optionalString,
    MAIL_FROM: z.string().default('Pingvas Studio <studio@pingvas.local>'),
    MAIL_DIR: z.string().default('.data/mail'),
    LEASE_SECONDS: z.coerce.number().int().positive().default(30),
    /** The global ceiling of one run; each job's own deadline comes from its hold (core jobDeadline). */
    JOB_MAX_RUN_SECONDS: z.coerce.number().int().positive().default(3600),
    /** Engine seconds one held credit allows (1 = what the hold pays for; above 1 = headroom for slower GPUs). */
    JOB_SECONDS_PER_CREDIT: z.coerce.number().positive().default(1),
    JOB_LOAD_ALLOWANCE_SECONDS: z.coerce.number().min(0).default(120),
    JOB_UPLOAD_ALLOWANCE_SECONDS: z.coerce.number().min(0).default(60),
    RECONCILE_INTERVAL_MS: z.coerce.number().int().positive().default(5000),
    /** Model-aware dispatch: how many runnable cold jobs from the queue head a claim may look past for a warm one. */
    DISPATCH_AFFINITY_WINDOW: z.coerce.number().int().min(0).default(50),
    /** …and the most any job may be passed over that way, in all (a higher tier's job included). */
    DISPATCH_AFFINITY_MAX_DELAY_SECONDS: z.coerce.number().min(0).default(15),
    /** generation.create calls allowed per user per window (a burst guard; the pending-jobs cap is per plan). */
    GENERATION_RATE_LIMIT: z.coerce.number().int().positive().default(60),
    GENERATION_RATE_WINDOW_SECONDS: z.coerce.number().int().positive().default(60),
    DISABLE_BACKGROUND: bool.default(false),
    /** How often each API replica looks for due e-mails in the outbox (and for ended subscriptions). */
    EMAIL_POLL_INTERVAL_MS: z.coerce.number().int().positive().default(2000),
    /** First retry delay of a failed e-mail; each later one doubles (capped at an hour). */
    EMAIL_RETRY_BASE_SECONDS: z.coerce.number().int().min(0).default(30),
    /** Whose X-Forwarded-For/-Proto/-Host to believe (client IP for rate limits, origin of checkout URLs): false = none. */
    TRUST_PROXY: trustProxy.default(false),
    /** Bearer token /metrics requires; unset = open (then keep /metrics off the public internet). */
    METRICS_TOKEN: optionalString,
    /** /metrics re-counts finished jobs (a full table scan) at most this often; live states are exact on every scrape. */
    METRICS_FINISHED_JOBS_TTL_SECONDS: z.coerce.number().int().min(0).default(300),
    /** Mutations (any tRPC mutation) allowed per signed-in user per window, across replicas. */
    MUTATION_RATE_LIMIT: z.coerce.number().int().positive().default(120),
    MUTATION_RATE_WINDOW_SECONDS: z.coerce.number().int().positive().default(60),
    /** How often an open WebSocket re-checks its session (besides before every operation); at most 60. */
    SESSION_RECHECK_SECONDS: z.coerce.number().positive().max(60).default(60),
    /** A WebSocket is closed after this long whatever happens (the client reconnects and is checked afresh). */
    WS_MAX_LIFETIME_SECONDS: z.coerce
      .number()
      .positive()
      .default(12 * 3600),
    /** Open WebSockets one user may hold on one replica. */
    WS_MAX_SOCKETS_PER_USER: z.coerce.number().int().positive().default(16),
    /** Subscriptions one WebSocket may hold at once. */
    WS_MAX_SUBSCRIPTIONS_PER_SOCKET: z.coerce.number().int().positive().default(100),
  })
  .superRefine((env, ctx) => {
    if (!env.CDN_BASE_URL) return;
    for (const name of ['CDN_KEY_PAIR_ID', 'CDN_PRIVATE_KEY'] as const) {
      if (env[name]) continue;
      ctx.addIssue({
        code: 'custom',
        path: [name],
        message: 'is required when CDN_BASE_URL is set (CDN URLs are signed)',
      });
    }
  });

const LEMONSQUEEZY_SETTINGS = [
  'LEMONSQUEEZY_STORE_ID',
  'LEMONSQUEEZY_WEBHOOK_SECRET',
  'LEMONSQUEEZY_VARIANT_STARTER',
  'LEMONSQUEEZY_VARIANT_PRO',
  'LEMONSQUEEZY_VARIANT_PACK_1000',
  'LEMONSQUEEZY_VARIANT_PACK_5000',
  'LEMONSQUEEZY_VARIANT_PACK_10000',
] as const;

/**
 * Outside explicit development, one line per setting that would leave a development default
 * in force: a secret from the repository, a stand-in for a third party, an open endpoint.
 */
function insecureSettings(e: z.infer<typeof apiEnvSchema>): string[] {
  const lines: string[] = [];
  const secret = (name: 'SESSION_SECRET' | 'WORKER_TOKEN', repositoryValue: string, unsetMeans: string) => {
    const value = e[name];
    if (!value) lines.push(`${name} is unset: ${unsetMeans}`);
    else if (value === repositoryValue) lines.push(`${name} is the development value from the repository`);
    else if (value.length < MIN_SECRET_LENGTH) lines.push(`${name} must be at least ${MIN_SECRET_LENGTH} characters`);
  };
  secret(
    'SESSION_SECRET',
    DEV_SESSION_SECRET,
    'sessions would be signed with the development secret from the repository',
  );
  secret(
    'WORKER_TOKEN',
    DEV_WORKER_TOKEN,
    '/internal/trpc would accept the development worker token from the repository',
  );
  if (!e.GOOGLE_CLIENT_ID || !e.GOOGLE_CLIENT_SECRET) {
    lines.push(
      'GOOGLE_CLIENT_ID/GOOGLE_CLIENT_SECRET are unset: ' +
        'the development sign-in (any e-mail, no password) would be served',
    );
  }
  if (!e.LEMONSQUEEZY_API_KEY) {
    lines.push('LEMONSQUEEZY_API_KEY is unset: the local test checkout (credits without payment) would be served');
  } else {
    for (const name of LEMONSQUEEZY_SETTINGS) {
      if (!e[name]) lines.push(`${name} is required when LEMONSQUEEZY_API_KEY is set`);
    }
    if (e.LEMONSQUEEZY_WEBHOOK_SECRET === DEV_LEMONSQUEEZY_WEBHOOK_SECRET) {
      lines.push('LEMONSQUEEZY_WEBHOOK_SECRET is the development value from the repository');
    }
  }
  if (!e.METRICS_TOKEN) lines.push('METRICS_TOKEN is unset: /metrics would be open to anyone');
  if (!e.S3_ENDPOINT) lines.push('S3_ENDPOINT is unset: images would go to the embedded development S3 server');
  if (e.S3_ACCESS_KEY_ID === DEV_S3_KEY || e.S3_SECRET_ACCESS_KEY === DEV_S3_KEY) {
    lines.push(
      "S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY are the embedded server's development credentials " + `(${DEV_S3_KEY})`,
    );
  }
  return lines;
}

export type ApiEnv = z.infer<typeof apiEnvSchema>;
/** Every variable name the API reads (`.env.example` must document each: a test checks). */
export const API_ENV_VARIABLES = Object.keys(apiEnvSchema.shape);

export interface ApiConfig extends Omit<ApiEnv, 'SESSION_SECRET' | 'WORKER_TOKEN'> {
  SESSION_SECRET: string;
  WORKER_TOKEN: string;
  /** Google sign-in is on only when both its variables are set; otherwise the dev form. */
  googleEnabled: boolean;
  /** Without an API key the local test checkout stands in for Lemon Squeezy. */
  lemonSqueezyEnabled: boolean;
  /** NODE_ENV=development (or test) on a loopback PUBLIC_URL: the only mode that runs on development defaults. */
  development: boolean;
}

export { ConfigError };

/**
 * Parses the environment; a bad or missing variable throws one line naming it, and outside
 * explicit development every insecure setting throws a line of its own (see the auth README).
 */
export function loadApiConfig(env: NodeJS.ProcessEnv = process.env): ApiConfig {
  const e = parseEnv(apiEnvSchema, env);
  const development = isExplicitDevelopment(e.NODE_ENV, e.PUBLIC_URL);
  if (!development) refuseInsecureSettings(insecureSettings(e));
  return {
    ...e,
    SESSION_SECRET: e.SESSION_SECRET ?? DEV_SESSION_SECRET,
    WORKER_TOKEN: e.WORKER_TOKEN ?? DEV_WORKER_TOKEN,
    // The local test checkout signs its webhooks too, so development needs a secret; production never gets this one.
    LEMONSQUEEZY_WEBHOOK_SECRET:
      e.LEMONSQUEEZY_WEBHOOK_SECRET ?? (development ? DEV_LEMONSQUEEZY_WEBHOOK_SECRET : undefined),
    googleEnabled: Boolean(e.GOOGLE_CLIENT_ID && e.GOOGLE_CLIENT_SECRET),
    lemonSqueezyEnabled: Boolean(e.LEMONSQUEEZY_API_KEY),
    development,
  };
}
