import { readdirSync, readFileSync } from 'node:fs';
import type { Redis } from '../../infra/redis.js';

/**
 * Loads the queue's Lua scripts from ./lua. The file name is the only registry: `claim-8.lua`
 * defines the command `claim` taking 8 keys. A line `-- @include "includes/x.lua"` is replaced by
 * that file (each file at most once per script), so writes shared by several scripts are written
 * once and every script Redis sees is self-contained.
 */

const LUA_DIR = new URL('./lua/', import.meta.url);
const SCRIPT_FILE = /^([a-zA-Z]+)-(\d+)\.lua$/;
const INCLUDE_LINE = /^-- @include "([^"]+)"[ \t]*$/gm;

export interface LuaScript {
  name: string;
  numberOfKeys: number;
  lua: string;
}

export function resolveIncludes(source: string, dir: URL = LUA_DIR, included = new Set<string>()): string {
  return source.replace(INCLUDE_LINE, (_line, path: string) => {
    const url = new URL(path, dir);
    if (included.has(url.href)) return '';
    included.add(url.href);
    return resolveIncludes(readFileSync(url, 'utf8'), new URL('./', url), included).trimEnd();
  });
}

export function loadScripts(dir: URL = LUA_DIR): LuaScript[] {
  return readdirSync(dir)
    .map((file) => SCRIPT_FILE.exec(file))
    .filter((match) => match !== null)
    .map(([file, name, keys]) => ({
      name: name!,
      numberOfKeys: Number(keys),
      lua: resolveIncludes(readFileSync(new URL(file, dir), 'utf8'), dir),
    }));
}

let scripts: Map<string, LuaScript> | undefined;
const defined = new WeakSet<Redis>();

type ScriptCommand = (...keysAndArgs: (string | number)[]) => Promise<unknown>;

/** Runs the script `name` with its keys and arguments; the number of keys must match its file name. */
export async function runScript(
  redis: Redis,
  name: string,
  keys: string[],
  args: (string | number)[],
): Promise<unknown> {
  scripts ??= new Map(loadScripts().map((script) => [script.name, script]));
  const script = scripts.get(name);
  if (!script) throw new Error(`no Lua script named ${name} in ${LUA_DIR.pathname}`);
  if (keys.length !== script.numberOfKeys) {
    throw new Error(`Lua script ${name} takes ${script.numberOfKeys} keys, got ${keys.length}`);
  }
  if (!defined.has(redis)) {
    for (const { name: command, numberOfKeys, lua } of scripts.values()) {
      redis.defineCommand(command, { numberOfKeys, lua });
    }
    defined.add(redis);
  }
  const command = (redis as unknown as Record<string, ScriptCommand>)[name]!;
  return command.call(redis, ...keys, ...args);
}
