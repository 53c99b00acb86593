import { lintConfig } from '@pingvas/tooling/eslint';

// The root's own files (vitest workspace setup); every workspace has its own eslint.config.js.
export default lintConfig({ ignores: ['apps/**', 'packages/**', 'tooling/**', 'scripts/**', 'bench/**', '.data/**'] });
