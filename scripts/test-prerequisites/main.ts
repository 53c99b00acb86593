import { carryOut, readMachine, StepFailed } from './machine.js';
import { describeMissing, planPrerequisites } from './plan.js';

/**
 * The first step of `npm test` (and so of .ci/run): make sure the machine has what the tests
 * need before anything builds or runs. Silent when all is there; installs and starts what is
 * missing when it can (root on Debian); otherwise exits 1 with one line saying what to do.
 */

const log = (line: string) => process.stdout.write(`test prerequisites: ${line}\n`);

async function main(): Promise<number> {
  const plan = planPrerequisites(await readMachine());
  if (plan.kind === 'ready') return 0;
  if (plan.kind === 'stop') {
    process.stderr.write(`${plan.line}\n`);
    return 1;
  }
  try {
    for (const step of plan.steps) await carryOut(step, log);
  } catch (error) {
    if (!(error instanceof StepFailed)) throw error;
    process.stderr.write(`npm test cannot start: ${error.message}\n`);
    return 1;
  }
  const stillMissing = describeMissing(await readMachine());
  if (stillMissing) {
    process.stderr.write(`${stillMissing}\n`);
    return 1;
  }
  log('ready');
  return 0;
}

process.exitCode = await main();
