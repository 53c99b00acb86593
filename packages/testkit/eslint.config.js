import { lintConfig } from '@pingvas/tooling/eslint';

export default lintConfig({ envModules: ['src/redis.ts', 'src/redis-server.ts'] });
