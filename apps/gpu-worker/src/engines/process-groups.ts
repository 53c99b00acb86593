/**
 * Every engine runs as the leader of its own process group, so one kill reaches whatever it
 * started too. The groups still alive are remembered here so that the worker's exit, however
 * it happens short of SIGKILL (process.exit, an uncaught error), takes them along.
 */
const live = new Set<number>();
let hooked = false;

export function trackGroup(pgid: number): void {
  if (!hooked) {
    process.on('exit', killAllGroups);
    hooked = true;
  }
  live.add(pgid);
}

/** SIGKILLs the whole group; a group that is already gone (ESRCH) is not an error. */
export function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ESRCH' && code !== 'EPERM') throw error;
  }
}

/** Kills any stragglers the leader left, and forgets the group. */
export function releaseGroup(pgid: number): void {
  killGroup(pgid);
  live.delete(pgid);
}

/** Synchronous on purpose: it runs in the process's `exit` handler. */
export function killAllGroups(): void {
  for (const pgid of live) killGroup(pgid);
  live.clear();
}
