#!/usr/bin/env node
// Builds the reference diffusion engine (refengine.c + scene.c + png.c + pngread.c + inflate.c + server.c) with the
// system C compiler into bin/refengine. No dependencies beyond Node itself.
//
//   node reference-engine/build.mjs            build when a source is newer than the binary
//   node reference-engine/build.mjs --force    always rebuild
//   node reference-engine/build.mjs --strict   also pass -Werror (used by smoke.sh)
//   node reference-engine/build.mjs --quiet    print nothing on success
//
// The compiler is $CC when set, else the first of cc, gcc, clang that runs.
// Importable too: `import { buildEngine, ENGINE_BIN } from './build.mjs'`.
import { spawnSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ENGINE_DIR = dirname(fileURLToPath(import.meta.url));
const SOURCES = ['refengine.c', 'scene.c', 'png.c', 'pngread.c', 'inflate.c', 'server.c'];
const HEADERS = ['detmath.h', 'png.h', 'pngread.h', 'inflate.h', 'scene.h', 'server.h'];
const EXE = process.platform === 'win32' ? '.exe' : '';

/** Absolute path of the built engine binary. */
export const ENGINE_BIN = join(ENGINE_DIR, 'bin', `refengine${EXE}`);
/**
 * The same program under a name ending in `-server`: it then behaves as sd-server (loads the
 * model once, serves the native async API on --listen-ip/--listen-port).
 */
export const SERVER_BIN = join(ENGINE_DIR, 'bin', `refengine-server${EXE}`);

export const NO_COMPILER_MESSAGE = 'no C compiler found: install one, e.g. apt-get install -y gcc';

export class EngineBuildError extends Error {}

function findCompiler() {
  const candidates = process.env.CC ? [process.env.CC] : ['cc', 'gcc', 'clang'];
  for (const cc of candidates) {
    const probe = spawnSync(cc, ['--version'], { stdio: 'ignore', shell: false });
    if (!probe.error && probe.status === 0) return cc;
  }
  return null;
}

function isUpToDate() {
  if (!existsSync(ENGINE_BIN) || !existsSync(SERVER_BIN)) return false;
  const built = statSync(ENGINE_BIN).mtimeMs;
  const inputs = [...SOURCES, ...HEADERS, 'build.mjs'].map((f) => join(ENGINE_DIR, f));
  return inputs.every((f) => statSync(f).mtimeMs <= built);
}

/**
 * Builds the engine when needed and returns the binary's path.
 * Throws EngineBuildError (message: one line) when there is no compiler or the compile fails.
 */
export function buildEngine({ force = false, strict = false, quiet = false } = {}) {
  if (!force && isUpToDate()) {
    if (!quiet) console.log(`refengine: up to date (${relative(process.cwd(), ENGINE_BIN) || ENGINE_BIN})`);
    return ENGINE_BIN;
  }
  const cc = findCompiler();
  if (!cc) throw new EngineBuildError(NO_COMPILER_MESSAGE);

  mkdirSync(dirname(ENGINE_BIN), { recursive: true });
  // compile to a private name, then rename: parallel builds never see half a binary
  const tmp = `${ENGINE_BIN}.${process.pid}.tmp`;
  const flags = ['-O2', '-std=c11', '-Wall', '-Wextra', '-ffp-contract=off'];
  if (strict) flags.push('-Werror');
  const args = [...flags, '-o', tmp, ...SOURCES.map((f) => join(ENGINE_DIR, f)), '-lm'];
  const started = Date.now();
  const res = spawnSync(cc, args, { cwd: ENGINE_DIR, encoding: 'utf8' });
  if (res.error || res.status !== 0) {
    rmSync(tmp, { force: true });
    const output = `${res.stdout ?? ''}${res.stderr ?? ''}`.trim();
    if (output) process.stderr.write(`${output}\n`);
    const why = res.error ? res.error.message : `exit status ${res.status}`;
    throw new EngineBuildError(`refengine: ${cc} failed to compile the reference engine (${why})`);
  }
  renameSync(tmp, ENGINE_BIN);
  // A second name for the same file, linked under a private name first (parallel builds).
  const serverTmp = `${SERVER_BIN}.${process.pid}.tmp`;
  rmSync(serverTmp, { force: true });
  linkSync(ENGINE_BIN, serverTmp);
  renameSync(serverTmp, SERVER_BIN);
  if (!quiet) {
    const where = relative(process.cwd(), ENGINE_BIN) || ENGINE_BIN;
    console.log(`refengine: built ${where} with ${cc} in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  }
  return ENGINE_BIN;
}

const invokedDirectly = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (invokedDirectly) {
  const argv = process.argv.slice(2);
  const unknown = argv.filter((a) => !['--force', '--strict', '--quiet'].includes(a));
  if (unknown.length) {
    console.error(`refengine build: unknown argument ${unknown[0]} (use --force, --strict, --quiet)`);
    process.exit(2);
  }
  try {
    buildEngine({
      force: argv.includes('--force'),
      strict: argv.includes('--strict'),
      quiet: argv.includes('--quiet'),
    });
  } catch (err) {
    if (err instanceof EngineBuildError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
}
