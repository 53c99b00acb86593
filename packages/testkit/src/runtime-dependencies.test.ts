import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

/**
 * Test servers and fakes must never reach a production install: the runtime workspaces may use
 * them only as devDependencies. `npm ls --omit=dev` shows what `npm ci --omit=dev` would install.
 */
const RUNTIME_WORKSPACES = ['@pingvas/api', '@pingvas/gpu-worker', '@pingvas/core', '@pingvas/db'];
const TEST_ONLY_PACKAGES = ['@pingvas/testkit', '@pingvas/local-services', 's3rver', 'smtp-server'];
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const RUNTIME_FOLDERS = ['apps/api', 'apps/gpu-worker', 'packages/core', 'packages/db'];

interface NpmTree {
  dependencies?: Record<string, NpmTree>;
}

async function installedNames(omitDev: boolean): Promise<Set<string>> {
  const args = ['ls', '--all', '--json', ...RUNTIME_WORKSPACES.flatMap((w) => ['-w', w])];
  if (omitDev) args.push('--omit=dev');
  // npm ls exits non-zero for problems unrelated to this check (an extraneous package); the tree is still printed.
  const stdout = await promisify(execFile)('npm', args, { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 }).then(
    (result) => result.stdout,
    (error: { stdout?: string }) => error.stdout ?? '',
  );
  const names = new Set<string>();
  const walk = (tree: NpmTree) => {
    for (const [name, child] of Object.entries(tree.dependencies ?? {})) {
      if (names.has(name)) continue;
      names.add(name);
      walk(child);
    }
  };
  walk(JSON.parse(stdout) as NpmTree);
  return names;
}

describe('runtime dependencies', () => {
  it('no runtime workspace installs a test server or fake outside its devDependencies', async () => {
    const [runtime, withDev] = await Promise.all([installedNames(true), installedNames(false)]);
    // The same listing with devDependencies finds them: the check looks where they would be.
    expect(TEST_ONLY_PACKAGES.filter((name) => withDev.has(name))).toEqual(TEST_ONLY_PACKAGES);
    expect(runtime.has('fastify')).toBe(true);
    expect(TEST_ONLY_PACKAGES.filter((name) => runtime.has(name))).toEqual([]);
  });

  it('no runtime workspace names one in its dependencies (npm ls hides one listed in both sections)', () => {
    for (const folder of RUNTIME_FOLDERS) {
      const manifest = JSON.parse(readFileSync(`${ROOT}/${folder}/package.json`, 'utf8')) as { dependencies?: object };
      expect({ folder, listed: TEST_ONLY_PACKAGES.filter((name) => name in (manifest.dependencies ?? {})) }).toEqual({
        folder,
        listed: [],
      });
    }
  });
});
