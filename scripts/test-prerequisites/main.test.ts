import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const COMMAND = 'tsx scripts/test-prerequisites/main.ts';

it("is the first thing the README's test command runs", () => {
  const { scripts } = JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as { scripts: Record<string, string> };
  expect(scripts.test?.split('&&')[0]?.trim()).toBe(COMMAND);
});

it('stops with exit code 1 and one line, installing nothing, when packages cannot help', async () => {
  // A CHROMIUM_PATH that points at nothing cannot be fixed by apt-get, so even root on Debian stops.
  const env = { ...process.env, CHROMIUM_PATH: '/nonexistent/chromium' };
  const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(`${ROOT}/node_modules/.bin/tsx`, [COMMAND.split(' ')[1]!], { cwd: ROOT, env }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
    });
  });
  expect(run.code).toBe(1);
  expect(run.stdout).toBe('');
  expect(run.stderr).toMatch(/^npm test cannot start: no Chromium at \/nonexistent\/chromium \(CHROMIUM_PATH\).*\.\n$/);
  expect(run.stderr.trimEnd()).not.toContain('\n');
});
