/**
 * A worker that dies of an uncaught error while its engine runs (cli-engine.test.ts checks
 * that the engine does not outlive it). Arguments: <engine bin> <output path>.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { REFERENCE_REGISTRY } from '../config.js';
import { CliEngine } from '../engines/cli-engine.js';

const [bin, outputPath] = process.argv.slice(2) as [string, string];
mkdirSync(dirname(outputPath), { recursive: true });
const engine = new CliEngine({
  bin,
  name: 'reference',
  models: REFERENCE_REGISTRY,
  env: { REFENGINE_HANG_AT_STEP: '2' },
});
void engine.run(
  {
    kind: 'txt2img',
    params: {
      prompt: 'orphan',
      model: 'sd15',
      width: 256,
      height: 256,
      steps: 5,
      cfgScale: 7,
      seed: 1,
      sampler: 'euler',
    },
    count: 1,
  },
  { inputs: {}, output: outputPath },
  {
    timeoutMs: 60_000,
    onProgress: () => {
      throw new Error('uncaught on purpose');
    },
  },
);
