export * from '@pingvas/db/testing';
export * from './redis.js';
export * from './fake-google.js';
export * from './fake-lemonsqueezy.js';
export * from './smtp-sink.js';
export * from './redis-server.js';
