import { lintConfig } from '@pingvas/tooling/eslint';

export default lintConfig({ envModules: ['src/config.ts', 'src/test/**', '**/build.mjs'] });
