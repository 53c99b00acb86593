import { z } from 'zod';

const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
const optionalString = z.string().trim().optional().transform((v) => (v ? v : undefined));
const optionalInt = z.coerce.number().int().positive().optional();

const DEV_SESSION_SECRET = 'dev-only-session-secret-change-me-0123456789';
const DEV_WORKER_TOKEN = 'dev-only-worker-token';

/** Every variable the API reads. `.env.example` documents each one. */
const apiEnvSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    API_PORT: z.coerce.number().int().min(0).max(65535).default(3000),
    API_HOST: z.string().default('127.0.0.1'),
    PUBLIC_URL: z.url().default('http://localhost:5173'),
    DATABASE_URL: z.url().default('postgres://pingvas_app@127.0.0.1:5432/pingvas'),
    REDIS_URL: z.url().default('redis://127.0.0.1:6379'),
    /** Prepended to every Redis key and channel: lets tests and several studios share one Redis. */
    REDIS_PREFIX: z.string().default(''),
    SESSION_SECRET: optionalString,
    SESSION_TTL_HOURS: z.coerce.number().positive().default(24 * 30),
    WORKER_TOKEN: optionalString,
    GOOGLE_CLIENT_ID: optionalString,
    GOOGLE_CLIENT_SECRET: optionalString,
    LEMONSQUEEZY_API_URL: z.url().default('https://api.lemonsqueezy.com'),
    LEMONSQUEEZY_API_KEY: optionalString,
    LEMONSQUEEZY_STORE_ID: optionalString,
    LEMONSQUEEZY_WEBHOOK_SECRET: optionalString,
    LEMONSQUEEZY_VARIANT_STARTER: optionalInt,
    LEMONSQUEEZY_VARIANT_PRO: optionalInt,
    LEMONSQUEEZY_VARIANT_PACK_1000: optionalInt,
    LEMONSQUEEZY_VARIANT_PACK_5000: optionalInt,
    LEMONSQUEEZY_VARIANT_PACK_10000: optionalInt,
    S3_ENDPOINT: optionalString,
    S3_REGION: z.string().default('us-east-1'),
    S3_BUCKET: z.string().default('pingvas'),
    S3_ACCESS_KEY_ID: z.string().default('S3RVER'),
    S3_SECRET_ACCESS_KEY: z.string().default('S3RVER'),
    S3_FORCE_PATH_STYLE: bool.default(true),
    /** Seconds a presigned GET or PUT URL stays valid. */
    S3_PRESIGN_SECONDS: z.coerce.number().int().positive().default(900),
    CDN_BASE_URL: optionalString,
    SMTP_URL: optionalString,
    MAIL_FROM: z.string().default('Pingvas Studio <studio@pingvas.local>'),
    MAIL_DIR: z.string().default('.data/mail'),
    LEASE_SECONDS: z.coerce.number().int().positive().default(30),
    JOB_MAX_RUN_SECONDS: z.coerce.number().int().positive().default(300),
    RECONCILE_INTERVAL_MS: z.coerce.number().int().positive().default(5000),
    DISABLE_BACKGROUND: bool.default(false),
  })
  .superRefine((env, ctx) => {
    if (env.NODE_ENV !== 'production') return;
    for (const name of ['SESSION_SECRET', 'WORKER_TOKEN', 'S3_ENDPOINT'] as const) {
      if (!env[name]) ctx.addIssue({ code: 'custom', path: [name], message: 'is required in production' });
    }
    if (env.SESSION_SECRET && env.SESSION_SECRET.length < 32) {
      ctx.addIssue({ code: 'custom', path: ['SESSION_SECRET'], message: 'must be at least 32 characters' });
    }
  });

export type ApiEnv = z.infer<typeof apiEnvSchema>;

export interface ApiConfig extends Omit<ApiEnv, 'SESSION_SECRET' | 'WORKER_TOKEN'> {
  SESSION_SECRET: string;
  WORKER_TOKEN: string;
  /** Google sign-in is on only when both its variables are set; otherwise the dev form. */
  googleEnabled: boolean;
  /** Without an API key the local test checkout stands in for Lemon Squeezy. */
  lemonSqueezyEnabled: boolean;
}

export class ConfigError extends Error {}

/** Parses the environment; a bad or missing variable throws one line naming it. */
export function loadApiConfig(env: NodeJS.ProcessEnv = process.env): ApiConfig {
  const parsed = apiEnvSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`config: ${issue.path.join('.')} ${issue.message}`);
  }
  const e = parsed.data;
  return {
    ...e,
    SESSION_SECRET: e.SESSION_SECRET ?? DEV_SESSION_SECRET,
    WORKER_TOKEN: e.WORKER_TOKEN ?? DEV_WORKER_TOKEN,
    googleEnabled: Boolean(e.GOOGLE_CLIENT_ID && e.GOOGLE_CLIENT_SECRET),
    lemonSqueezyEnabled: Boolean(e.LEMONSQUEEZY_API_KEY),
  };
}
