import { z } from 'zod';
import { parseEnv } from '@pingvas/core';

/**
 * The benchmarks' knobs (BENCH_*), read from the environment in this one place and validated:
 * a typo such as BENCH_JOBS=1e3x stops the run with one line naming the variable instead of
 * timing nonsense. Each benchmark names its own knobs and defaults.
 */
export function benchCounts<K extends string>(defaults: Record<K, number>): Record<K, number> {
  const shape = Object.fromEntries(
    Object.entries<number>(defaults).map(([name, fallback]) => [
      name,
      z.coerce.number().int().positive().default(fallback),
    ]),
  );
  return parseEnv(z.object(shape), process.env) as Record<K, number>;
}

/** A comma-separated list, each entry one of `allowed`; all of them when the variable is unset. */
export function benchList<T extends string>(name: string, allowed: readonly T[]): T[] {
  const raw = process.env[name];
  if (!raw) return [...allowed];
  const entries = raw.split(',').map((entry) => entry.trim());
  const bad = entries.find((entry) => !(allowed as readonly string[]).includes(entry));
  if (bad !== undefined) throw new Error(`config: ${name} must list some of ${allowed.join(', ')} (not "${bad}")`);
  return entries as T[];
}

/** True when the variable is set to anything but an empty string. */
export function benchFlag(name: string): boolean {
  return Boolean(process.env[name]);
}

/** The environment a child process of a benchmark starts from (PATH, PG*, …), plus `overrides`. */
export function childEnv(overrides: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, ...overrides };
}

/** The directories of PATH, for locating an installed binary. */
export function searchPath(): string[] {
  return (process.env.PATH ?? '').split(':').filter(Boolean);
}
