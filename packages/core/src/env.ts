import type { z } from 'zod';

/** A bad or missing environment variable: its message is the one line an app prints before exiting. */
export class ConfigError extends Error {}

/** Parses an app's environment with its schema; the first problem becomes one line naming the variable. */
export function parseEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv): z.infer<S> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`config: ${issue.path.join('.')} ${issue.message}`);
  }
  return parsed.data;
}

/**
 * The worker token development runs with when WORKER_TOKEN is unset: the API and the worker
 * read it from here, so the two always agree. Outside development it is refused.
 */
export const DEV_WORKER_TOKEN = 'dev-only-worker-token-never-use-in-production';

/** A shared secret shorter than this is guessable; outside development it stops the process. */
export const MIN_SECRET_LENGTH = 32;

/** True for http(s) URLs whose host is this machine: localhost, *.localhost, 127.0.0.0/8 or ::1. */
export function isLoopbackUrl(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname.toLowerCase();
  } catch {
    return false;
  }
  if (host === 'localhost' || host.endsWith('.localhost') || host === '[::1]') return true;
  return /^127(\.\d{1,3}){3}$/.test(host);
}

/**
 * Development defaults (secrets from the repository, stand-ins for third parties) are allowed
 * only when development is asked for by name and the app serves this machine alone: an unset
 * NODE_ENV, or a public address, means production rules.
 */
export function isExplicitDevelopment(nodeEnv: string | undefined, url: string): boolean {
  return (nodeEnv === 'development' || nodeEnv === 'test') && isLoopbackUrl(url);
}

/** Stops the start with one line per insecure setting (nothing to do when the list is empty). */
export function refuseInsecureSettings(lines: string[]): void {
  if (lines.length > 0) throw new ConfigError(lines.map((line) => `config: ${line}`).join('\n'));
}
