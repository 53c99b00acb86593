// Patches the installed postgres.js (3.4.9, the latest release) so that losing a backend fails the
// requests it served instead of the whole process. Runs as this package's postinstall; idempotent;
// fails loudly when postgres.js changed shape (then check whether upstream fixed it and drop this).
// Why and what: "Losing the database connection" in README.md (upstream #1154, #1208, #1186).
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const MARKER = 'pingvas: connection-loss patch';
const CONNECTION_EDITS = [
  {
    // A write scheduled with setImmediate (or a ROLLBACK/COMMIT a transaction issues after its
    // connection closed) found `socket === null` and threw from the timer: an uncaught TypeError.
    // Settle the pending queries with CONNECTION_CLOSED instead, as a closed connection does, and
    // forget the settled query: a connection that still holds one never ends (sql.end() hangs).
    find: '  function nextWrite(fn) {\n    const x = socket.write(chunk, fn)\n',
    replace:
      '  function nextWrite(fn) {\n' +
      `    if (!socket) { // ${MARKER}\n` +
      '      clearImmediate(nextWriteTimer)\n' +
      '      chunk = nextWriteTimer = null\n' +
      "      error(Errors.connection('CONNECTION_CLOSED', options))\n" +
      '      query = null\n' +
      '      return false\n' +
      '    }\n' +
      '    const x = socket.write(chunk, fn)\n',
  },
  {
    // closed() cancelled the scheduled write but kept its handle and bytes: the reconnected socket
    // then never flushed again (the startup message waited behind a timer that would never fire).
    find: "    clearImmediate(nextWriteTimer)\n    socket.removeListener('data', data)\n",
    replace:
      '    clearImmediate(nextWriteTimer)\n' +
      `    chunk = nextWriteTimer = null // ${MARKER}\n` +
      "    socket.removeListener('data', data)\n",
  },
  {
    // A socket error (ECONNRESET) rejects the queries pending at that moment, but the callbacks
    // that see those rejections can queue more before the close arrives (a transaction's ROLLBACK).
    // Those stayed in `sent` and went on to take, one by one, the answers of the queries the
    // reconnected socket ran for others (and the last one never settled). Reject whatever is still
    // pending at the close, error or not. The dead backend's last message (FATAL: terminating
    // connection) and the query it answered must not outlive the socket either: the reconnected
    // connection handed that old error to its first new query. (An `if`, not a line that starts
    // with `(`: postgres.js has no semicolons, and the line above is `return reconnect()`.)
    find: "    !hadError && (query || sent.length) && error(Errors.connection('CONNECTION_CLOSED', options, socket))\n",
    replace:
      `    if (query || sent.length) error(Errors.connection('CONNECTION_CLOSED', options, socket)) // ${MARKER}\n` +
      '    query = errorResponse = null\n',
  },
];

const TRANSACTION_EDITS = [
  {
    find: '      , prepare = null\n',
    replace: `      , prepare = null\n      , closedError = null // ${MARKER}\n`,
  },
  {
    // A transaction outlived its connection: its callback kept running and its next query, or its
    // own ROLLBACK/COMMIT, went to that connection after the pool had handed it to someone else
    // (or hung in the transaction's queue). From the close on, the transaction refuses every query.
    find: '        new Promise((_, reject) => connection.onclose = reject)\n',
    replace:
      `        new Promise((_, reject) => connection.onclose = e => { // ${MARKER}\n` +
      '          closedError = e\n' +
      '          while (queries.length) queries.shift().reject(e)\n' +
      '          reject(e)\n' +
      '        })\n',
  },
  {
    find: '      function handler(q) {\n        q.catch(e => uncaughtError || (uncaughtError = e))\n',
    replace:
      '      function handler(q) {\n' +
      `        if (closedError) return q.reject(closedError) // ${MARKER}\n` +
      '        q.catch(e => uncaughtError || (uncaughtError = e))\n',
  },
];

const PATCHES = [
  { file: 'connection.js', edits: CONNECTION_EDITS },
  { file: 'index.js', edits: TRANSACTION_EDITS },
];

const require = createRequire(import.meta.url);
const root = join(dirname(require.resolve('postgres')), '..', '..');
const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;

for (const variant of ['src', 'cjs/src', 'cf/src']) {
  for (const { file: name, edits } of PATCHES) {
    const file = join(root, variant, name);
    const original = readFileSync(file, 'utf8');
    let patched = original;
    for (const { find, replace } of edits) {
      if (patched.includes(replace)) continue;
      if (patched.split(find).length !== 2) {
        throw new Error(`postgres.js ${version} ${variant}/${name}: expected code not found; re-check the patch`);
      }
      patched = patched.replace(find, () => replace);
    }
    if (patched === original) continue;
    // Write a new file and rename it over the old one: node_modules may be hard-linked into other
    // checkouts, which must not change under them.
    writeFileSync(`${file}.pingvas-tmp`, patched);
    renameSync(`${file}.pingvas-tmp`, file);
    console.log(`patched postgres.js ${version} ${variant}/${name}`);
  }
}
