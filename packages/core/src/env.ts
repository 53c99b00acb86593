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
