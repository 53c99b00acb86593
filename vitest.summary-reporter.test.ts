import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The closing line of a real vitest run: each case writes a throwaway project (its own config,
 * only the summary reporter) into a temp folder and runs vitest on it as a child process.
 */

const REPORTER = fileURLToPath(new URL('./vitest.summary-reporter.ts', import.meta.url));
const VITEST = fileURLToPath(new URL('./node_modules/vitest/vitest.mjs', import.meta.url));
const folders: string[] = [];

afterAll(() => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

/** Runs a project made of `files` (test code using vitest's globals); resolves with its exit code and stdout. */
function runProject(files: Record<string, string>): Promise<{ exitCode: number; stdout: string }> {
  const folder = mkdtempSync(join(tmpdir(), 'summary-reporter-'));
  folders.push(folder);
  const config = { test: { globals: true, include: ['*.test.js'], reporters: [REPORTER] } };
  writeFileSync(join(folder, 'vitest.config.mjs'), `export default ${JSON.stringify(config)};\n`);
  for (const [name, code] of Object.entries(files)) writeFileSync(join(folder, name), code);
  // The child is a run of its own, not a worker of this one.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('VITEST')));
  return new Promise((resolve) => {
    execFile(process.execPath, [VITEST, 'run'], { cwd: folder, env }, (error, stdout) => {
      resolve({ exitCode: error ? Number(error.code) : 0, stdout });
    });
  });
}

function closingLine(stdout: string): string {
  return stdout.trimEnd().split('\n').at(-1) ?? '';
}

describe('the closing line', () => {
  it('counts a test file whose beforeAll throws as failed, and the run exits non-zero', async () => {
    const run = await runProject({
      'setup.test.js': `beforeAll(() => { throw new Error('setup failed'); });
        test('first', () => {});
        test('second', () => {});`,
    });
    expect(closingLine(run.stdout)).toBe('0 passed, 1 failed, 2 skipped');
    expect(run.exitCode).not.toBe(0);
  });

  it('counts afterAll and suite hooks, import errors, files without tests and unhandled errors', async () => {
    const run = await runProject({
      'teardown.test.js': `afterAll(() => { throw new Error('teardown failed'); });
        test('passes', () => {});`,
      'suite-hook.test.js': `describe('suite', () => {
          beforeAll(() => { throw new Error('suite setup failed'); });
          test('never runs', () => {});
        });
        test('passes', () => {});`,
      'import.test.js': `import './missing-module.js';
        test('never collected', () => {});`,
      'empty.test.js': '// no tests\n',
      // The timer fires while the second test waits for a later one: an error no test owns.
      'unhandled.test.js': `test('throws later', () => { setTimeout(() => { throw new Error('unowned'); }, 0); });
        test('waits', () => new Promise((resolve) => setTimeout(resolve, 50)));`,
    });
    expect(closingLine(run.stdout)).toBe('4 passed, 5 failed, 1 skipped');
    expect(run.exitCode).not.toBe(0);
  });

  it('reads 0 failed, alone on its line, for a run that passes', async () => {
    const run = await runProject({
      'fine.test.js': `test('one', () => {}); test('two', () => {}); test.skip('later', () => {});`,
    });
    expect(run.stdout.endsWith('\n2 passed, 0 failed, 1 skipped\n')).toBe(true);
    expect(run.exitCode).toBe(0);
  });
});
