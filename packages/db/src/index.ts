export * from './client.js';
export * from './migrate.js';
export * from './urls.js';
export * as schema from './schema.js';
