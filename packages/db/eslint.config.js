import { lintConfig } from '@pingvas/tooling/eslint';

export default lintConfig({ envModules: ['src/migrate-cli.ts', 'src/testing.ts', 'drizzle.config.ts'] });
