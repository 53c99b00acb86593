import { lintConfig } from '@pingvas/tooling/eslint';

export default lintConfig({ browser: true, envModules: ['vite.config.ts', 'e2e/**'] });
