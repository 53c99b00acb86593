import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { REFERENCE_ENGINE_BIN } from '../config.js';

const BUILD_SCRIPT = fileURLToPath(new URL('../../reference-engine/build.mjs', import.meta.url));

/** The reference engine, built first if a source is newer (the build is atomic: test files may race). */
export function referenceEngine(): string {
  execFileSync(process.execPath, [BUILD_SCRIPT, '--quiet'], { stdio: ['ignore', 'ignore', 'inherit'] });
  return REFERENCE_ENGINE_BIN;
}

export interface EngineExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the engine binary to its end, capturing everything it says. */
export function runBinary(
  bin: string,
  args: string[],
  env: Record<string, string> = {},
  onStdout?: (chunk: string, pid: number) => void,
  cwd?: string,
): Promise<EngineExit> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      onStdout?.(chunk, child.pid!);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** True while any process (zombie or not) is in the group: `kill(-pgid, 0)` answers ESRCH only when none is. */
export function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

/** The pids of running processes whose command line mentions `text` (finds an engine by its output path). */
export function processesMentioning(text: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text)) found.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}
