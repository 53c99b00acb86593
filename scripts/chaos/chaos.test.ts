import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { FAULT_KINDS } from './injector.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FINAL_LINE = /^chaos: (\d+) jobs, (\d+) faults, (\d+) lost, (\d+) double-charged, (\d+) stuck, (\d+) orphans$/m;

/**
 * The chaos run's checks are the test: a short run with a fixed seed (2 APIs, 2 workers,
 * every kind of fault at least once) must end with nothing lost, nothing charged twice and
 * nothing stuck, and after the end-of-run orphan sweep no object without an image row.
 */
it('a short fixed-seed chaos run loses nothing, charges nothing twice and leaves nothing stuck', async () => {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'scripts/chaos/chaos.ts',
      '--seconds',
      '30',
      '--seed',
      '7',
      '--apis',
      '2',
      '--workers',
      '2',
      '--users',
      '24',
    ],
    {
      cwd: ROOT,
      env: { ...process.env, NODE_NO_WARNINGS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));

  const line = FINAL_LINE.exec(output);
  expect(line, output).not.toBeNull();
  // The run's figures (the table and the final line) belong in the test command's output too.
  console.log(output.slice(Math.max(0, output.indexOf('\nchaos run:'))).trim());
  const [, jobs, faults, lost, doubleCharged, stuck, orphans] = line!.map(Number);
  expect({ lost, doubleCharged, stuck, orphans }, output).toEqual({ lost: 0, doubleCharged: 0, stuck: 0, orphans: 0 });
  // A busy machine slows the stream; the run must still have created jobs and met every fault kind.
  expect(jobs, output).toBeGreaterThan(0);
  // Faults fail some jobs on purpose; a run in which none completed means the engine never ran at all.
  const completed = Number(/^\s+completed\s+(\d+)$/m.exec(output)?.[1] ?? 0);
  expect(completed, output).toBeGreaterThan(0);
  expect(faults, output).toBeGreaterThanOrEqual(6);
  // Every kind the injector knows happened at least once (engine faults ride on the jobs and may miss a kind).
  for (const kind of FAULT_KINDS) {
    const injected = Number(new RegExp(`^\\s+fault ${kind}\\s+(\\d+)$`, 'm').exec(output)?.[1] ?? 0);
    expect(injected, `fault ${kind}\n${output}`).toBeGreaterThan(0);
  }
  expect(code, output).toBe(0);
});
