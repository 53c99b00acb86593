import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadScripts, resolveIncludes } from './lua-scripts.js';

function luaDir(files: Record<string, string>): URL {
  const dir = mkdtempSync(join(tmpdir(), 'lua-scripts-'));
  for (const [path, body] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), body);
  }
  return pathToFileURL(`${dir}/`);
}

describe('the Lua script loader', () => {
  it('takes the command name and key count from the file name and ignores other files', () => {
    const dir = luaDir({ 'moveJob-3.lua': 'return 1\n', 'includes/helper.lua': 'local x = 1\n', 'notes.txt': '' });
    expect(loadScripts(dir)).toEqual([{ name: 'moveJob', numberOfKeys: 3, lua: 'return 1\n' }]);
  });

  it('inlines includes, nested ones relative to the including file, each file once', () => {
    const dir = luaDir({
      'includes/a.lua': '-- @include "b.lua"\nlocal function a() end\n',
      'includes/b.lua': 'local function b() end\n',
      'run-1.lua': '-- @include "includes/a.lua"\n-- @include "includes/b.lua"\nreturn 1\n',
    });
    expect(loadScripts(dir)[0]!.lua).toBe('local function b() end\nlocal function a() end\n\nreturn 1\n');
  });

  it('fails loudly on an include that does not exist', () => {
    expect(() => resolveIncludes('-- @include "includes/missing.lua"\n', luaDir({}))).toThrow(/ENOENT/);
  });

  it('every queue script names exactly as many keys as its file name declares, and no include is left', () => {
    const scripts = loadScripts();
    expect(scripts.map((s) => s.name).sort()).toEqual([
      'claim',
      'dequeue',
      'enqueue',
      'finish',
      'requeueMissing',
      'syncRunning',
    ]);
    for (const script of scripts) {
      const used = [...script.lua.matchAll(/KEYS\[(\d+)\]/g)].map((m) => Number(m[1]));
      expect({ name: script.name, keys: Math.max(...used) }).toEqual({ name: script.name, keys: script.numberOfKeys });
      expect(script.lua).not.toContain('@include');
    }
  });
});
