export * from './embedded-s3.js';
export * from './free-port.js';
