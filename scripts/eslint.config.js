import { lintConfig } from '@pingvas/tooling/eslint';

export default lintConfig({
  envModules: ['start.ts', 'studio.ts', 'studio/services.ts', 'chaos/cluster.ts', 'test-prerequisites/machine.ts'],
});
