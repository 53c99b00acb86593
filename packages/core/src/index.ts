export * from './plans.js';
export * from './models.js';
export * from './credits.js';
export * from './generation.js';
export * from './jobs.js';
export * from './errors.js';
export * from './events.js';
export * from './worker-protocol.js';
