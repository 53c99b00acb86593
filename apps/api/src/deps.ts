import { createDbClient, type Database, type DbClient } from '@pingvas/db';
import type { ApiConfig } from './config.js';
import { createLogger, type Logger } from './infra/logger.js';
import { ObjectStore } from './infra/object-store.js';
import { createRedis, redisKeys, type Redis, type RedisKeys } from './infra/redis.js';
import { createMetrics, type Metrics } from './modules/metrics/metrics.js';

/** The connections every module shares. Built once per process (or per test file). */
export interface AppDeps {
  config: ApiConfig;
  db: Database;
  dbClient: DbClient;
  redis: Redis;
  keys: RedisKeys;
  store: ObjectStore;
  logger: Logger;
  /** This app's Prometheus registry and instruments (/metrics). */
  metrics: Metrics;
}

export function createAppDeps(config: ApiConfig, logger: Logger = createLogger(config.LOG_LEVEL)): AppDeps {
  const dbClient = createDbClient(config.DATABASE_URL, { max: 20 });
  return {
    config,
    db: dbClient.db,
    dbClient,
    redis: createRedis(config.REDIS_URL),
    keys: redisKeys(config.REDIS_PREFIX),
    store: new ObjectStore({
      endpoint: config.S3_ENDPOINT,
      region: config.S3_REGION,
      bucket: config.S3_BUCKET,
      accessKeyId: config.S3_ACCESS_KEY_ID,
      secretAccessKey: config.S3_SECRET_ACCESS_KEY,
      forcePathStyle: config.S3_FORCE_PATH_STYLE,
      presignSeconds: config.S3_PRESIGN_SECONDS,
      uploadUrlSeconds: config.S3_UPLOAD_URL_SECONDS,
      ...(config.CDN_BASE_URL && config.CDN_KEY_PAIR_ID && config.CDN_PRIVATE_KEY
        ? {
            cdn: {
              baseUrl: config.CDN_BASE_URL,
              keyPairId: config.CDN_KEY_PAIR_ID,
              privateKey: config.CDN_PRIVATE_KEY.replace(/\\n/g, '\n'),
              urlSeconds: config.CDN_URL_SECONDS,
            },
          }
        : {}),
    }),
    logger,
    metrics: createMetrics(),
  };
}

export async function closeAppDeps(deps: AppDeps): Promise<void> {
  deps.redis.disconnect();
  deps.store.client.destroy();
  await deps.dbClient.close();
}
