import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import S3rver from 's3rver';

export interface EmbeddedS3 {
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  close(): Promise<void>;
}

/**
 * The browser PUTs uploads straight to the bucket with presigned URLs (a cross-origin request with
 * a Content-Type, so preflighted) and the mask editor reads images into a canvas: both need CORS.
 * Any origin, as the presigned signature, not the origin, is what grants access; a production
 * bucket needs the same rule (the operations guide in the README says so).
 */
const BROWSER_CORS =
  '<CORSConfiguration><CORSRule>' +
  '<AllowedOrigin>*</AllowedOrigin><AllowedMethod>PUT</AllowedMethod><AllowedMethod>GET</AllowedMethod>' +
  '<AllowedHeader>*</AllowedHeader><MaxAgeSeconds>3600</MaxAgeSeconds>' +
  '</CORSRule></CORSConfiguration>';

/** An embedded S3-compatible server on loopback (a free port unless `port` is given), with one bucket. */
export async function startEmbeddedS3(
  options: { directory?: string; port?: number; bucket?: string } = {},
): Promise<EmbeddedS3> {
  const directory = options.directory ?? mkdtempSync(join(tmpdir(), 'pingvas-s3-'));
  const bucket = options.bucket ?? 'pingvas';
  const server = new S3rver({
    address: '127.0.0.1',
    port: options.port ?? 0,
    directory,
    silent: true,
    configureBuckets: [{ name: bucket, configs: [BROWSER_CORS] }],
  });
  const address = (await server.run()) as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    bucket,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    region: 'us-east-1',
    async close() {
      await server.close();
      if (!options.directory) rmSync(directory, { recursive: true, force: true });
    },
  };
}
