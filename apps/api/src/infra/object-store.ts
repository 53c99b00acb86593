import { createHash, createHmac, createSign, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import {
  CreateBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';

/**
 * A CDN in front of the bucket that only serves URLs signed with a CloudFront key pair
 * (canned policy: the URL and an expiry). Nothing the API hands out is permanent: a URL
 * stops working at its expiry, so unpublishing a board or deleting an image revokes it
 * within `urlSeconds` (plus the rounding below).
 */
export interface SignedCdnConfig {
  baseUrl: string;
  keyPairId: string;
  /** PEM, RSA: the private half of the public key registered with the CDN's key group. */
  privateKey: string;
  urlSeconds: number;
}

export interface ObjectStoreConfig {
  endpoint?: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  forcePathStyle: boolean;
  /** Lifetime of presigned GET URLs (gallery, downloads). */
  presignSeconds: number;
  /** Lifetime of presigned PUT URLs; workers ask for them right before each upload. */
  uploadUrlSeconds?: number;
  cdn?: SignedCdnConfig;
}

/** Expiries are rounded up to this step, so a page reloaded within it gets the same (cacheable) URLs. */
const CDN_EXPIRY_STEP_SECONDS = 300;

export interface StoredObject {
  key: string;
  lastModified: Date;
}

/** Lower-case letters, digits and inner hyphens: a bucket name that can be a host label. */
const HOST_LABEL_BUCKET = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

/** SigV4's URI encoding: every byte but A–Z a–z 0–9 - _ . ~ is percent-encoded. */
function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();

/** The S3 bucket, as the API uses it: presigned URLs out, deletes in. */
export class ObjectStore {
  readonly client: S3Client;
  /** Scheme and host (with a non-default port) that presigned URLs point at. */
  private readonly origin: string;
  /** The `host` header a browser will send to `origin`, which every signature covers. */
  private readonly host: string;
  /** Path of the bucket under `origin`: empty when virtual-hosted, `/<bucket>` when path-style. */
  private readonly bucketPath: string;
  /** The derived SigV4 key depends only on the secret, the UTC day, the region and the service. */
  private signingKey: { day: string; key: Buffer } | null = null;

  constructor(readonly config: ObjectStoreConfig) {
    this.client = new S3Client({
      endpoint: config.endpoint,
      region: config.region,
      forcePathStyle: config.forcePathStyle,
      credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey },
      // Checksums the SDK adds by default are not understood by every S3-compatible server.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    // The addressing the SDK picks: virtual-hosted unless told otherwise, or unless the bucket
    // cannot be a host label or the endpoint is an IP address.
    const base = new URL(config.endpoint ?? `https://s3.${config.region}.amazonaws.com`);
    const basePath = base.pathname.replace(/\/+$/, '');
    const virtualHosted =
      !config.forcePathStyle && HOST_LABEL_BUCKET.test(config.bucket) && !isIP(base.hostname.replace(/^\[|\]$/g, ''));
    if (virtualHosted) base.hostname = `${config.bucket}.${base.hostname}`;
    this.origin = base.origin;
    this.host = base.host;
    this.bucketPath = virtualHosted ? basePath : `${basePath}/${uriEncode(config.bucket)}`;
  }

  get bucket(): string {
    return this.config.bucket;
  }

  async ensureBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch {
      await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
    }
  }

  /**
   * A URL to PUT the object with. The upload must send exactly this Content-Type and, when
   * given, exactly `contentLength` bytes: both are signed headers, so S3 refuses anything else.
   */
  presignPut(
    key: string,
    contentType: string,
    options: { contentLength?: number; expiresSeconds?: number } = {},
  ): Promise<string> {
    return Promise.resolve(this.presign('PUT', key, { contentType, ...options }));
  }

  /**
   * A presigned GET. `contentDisposition` becomes the response's Content-Disposition
   * (`response-content-disposition`, honoured by S3 only, not by a CDN).
   */
  presignGet(key: string, options: { contentDisposition?: string; expiresSeconds?: number } = {}): Promise<string> {
    const query: [string, string][] = options.contentDisposition
      ? [['response-content-disposition', options.contentDisposition]]
      : [];
    return Promise.resolve(this.presign('GET', key, { query, expiresSeconds: options.expiresSeconds }));
  }

  /** A URL a browser may GET: the CDN's, signed, when one is configured, else a presigned one. */
  readUrl(key: string): Promise<string> {
    if (this.config.cdn) return Promise.resolve(signCdnUrl(this.config.cdn, key, Date.now()));
    return this.presignGet(key);
  }

  /**
   * SigV4 query-string signing, done directly: object-store.test.ts checks that the result
   * equals the SDK's getSignedUrl parameter for parameter (its `x-id` marker aside). getSignedUrl
   * resolves endpoint rules and runs the whole middleware stack per URL, 1–7 ms under load,
   * and a gallery page needs 40 URLs; this is one SHA-256 and one HMAC, the derived key being
   * reused all day.
   */
  private presign(
    method: 'GET' | 'PUT',
    key: string,
    extra: { contentType?: string; contentLength?: number; expiresSeconds?: number; query?: [string, string][] },
  ): string {
    const amzDate = new Date().toISOString().replace(/[-:]|\.\d{3}/g, '');
    const day = amzDate.slice(0, 8);
    const scope = `${day}/${this.config.region}/s3/aws4_request`;
    // Signed headers, sorted by name.
    const headers: [string, string][] = [['host', this.host]];
    if (extra.contentType !== undefined)
      headers.unshift(['content-type', extra.contentType.trim().replace(/\s+/g, ' ')]);
    if (extra.contentLength !== undefined) headers.unshift(['content-length', String(extra.contentLength)]);
    const signedHeaders = headers.map(([name]) => name).join(';');
    const params: [string, string][] = [
      ['X-Amz-Algorithm', 'AWS4-HMAC-SHA256'],
      ['X-Amz-Content-Sha256', 'UNSIGNED-PAYLOAD'],
      ['X-Amz-Credential', `${this.config.accessKeyId}/${scope}`],
      ['X-Amz-Date', amzDate],
      ['X-Amz-Expires', String(extra.expiresSeconds ?? this.config.presignSeconds)],
      ['X-Amz-SignedHeaders', signedHeaders],
      ...(extra.query ?? []),
    ];
    // The canonical query string (sorted by encoded name) doubles as the URL's query.
    const query = params
      .map(([name, value]) => [uriEncode(name), uriEncode(value)] as const)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, value]) => `${name}=${value}`)
      .join('&');
    const path = `${this.bucketPath}/${key.split('/').map(uriEncode).join('/')}`;
    const canonicalRequest = [
      method,
      path,
      query,
      headers.map(([name, value]) => `${name}:${value}\n`).join(''),
      signedHeaders,
      'UNSIGNED-PAYLOAD',
    ].join('\n');
    const stringToSign = [
      'AWS4-HMAC-SHA256',
      amzDate,
      scope,
      createHash('sha256').update(canonicalRequest).digest('hex'),
    ].join('\n');
    const signature = createHmac('sha256', this.signingKeyFor(day)).update(stringToSign).digest('hex');
    return `${this.origin}${path}?${query}&X-Amz-Signature=${signature}`;
  }

  private signingKeyFor(day: string): Buffer {
    if (this.signingKey?.day !== day) {
      const key = hmac(
        hmac(hmac(hmac(`AWS4${this.config.secretAccessKey}`, day), this.config.region), 's3'),
        'aws4_request',
      );
      this.signingKey = { day, key };
    }
    return this.signingKey.key;
  }

  async getBytes(key: string): Promise<Uint8Array> {
    const result = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    return result.Body!.transformToByteArray();
  }

  /** The first `length` bytes of an object; `length` must not exceed its size. */
  async getPrefixBytes(key: string, length: number): Promise<Uint8Array> {
    const range = `bytes=0-${length - 1}`;
    const result = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: range }));
    return result.Body!.transformToByteArray();
  }

  /** Size and Content-Type as stored, or null when there is no such object. */
  async head(key: string): Promise<{ bytes: number; contentType: string | undefined } | null> {
    try {
      const result = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { bytes: result.ContentLength ?? 0, contentType: result.ContentType };
    } catch (err) {
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return null;
      throw err;
    }
  }

  /**
   * Every object under `prefix`, one listing page (≤ 1,000 keys) at a time. ListObjects (v1)
   * paged by Marker = the last key seen: the embedded server cannot make v2 continuation
   * tokens (it encrypts them with DES, which OpenSSL 3 no longer offers), S3 serves both.
   */
  async *listPages(prefix: string, options: { pageSize?: number } = {}): AsyncGenerator<StoredObject[]> {
    let Marker: string | undefined;
    for (;;) {
      const page = await this.client.send(
        new ListObjectsCommand({ Bucket: this.bucket, Prefix: prefix, Marker, MaxKeys: options.pageSize }),
      );
      const objects = (page.Contents ?? []).map((o) => ({ key: o.Key!, lastModified: o.LastModified! }));
      yield objects;
      if (!page.IsTruncated || objects.length === 0) return;
      Marker = objects[objects.length - 1]!.key;
    }
  }

  async putBytes(key: string, body: Uint8Array, contentType: string): Promise<void> {
    await this.client.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: contentType }),
    );
  }

  /** Deleting a missing key is not an error (S3 semantics). */
  async deleteKeys(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.client.send(
      new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }),
    );
  }
}

/** CloudFront's URL-safe base64: + → -, = → _, / → ~. */
const cloudFrontBase64 = (bytes: Buffer) =>
  bytes.toString('base64').replace(/\+/g, '-').replace(/=/g, '_').replace(/\//g, '~');

/** A CloudFront canned-policy signed URL for `key`, valid until a rounded-up expiry. */
export function signCdnUrl(cdn: SignedCdnConfig, key: string, nowMs: number): string {
  const url = `${cdn.baseUrl.replace(/\/$/, '')}/${key.split('/').map(uriEncode).join('/')}`;
  const expires = Math.ceil((nowMs / 1000 + cdn.urlSeconds) / CDN_EXPIRY_STEP_SECONDS) * CDN_EXPIRY_STEP_SECONDS;
  const condition = { DateLessThan: { 'AWS:EpochTime': expires } };
  const policy = JSON.stringify({ Statement: [{ Resource: url, Condition: condition }] });
  const signature = cloudFrontBase64(createSign('RSA-SHA1').update(policy).sign(cdn.privateKey));
  return `${url}?Expires=${expires}&Signature=${signature}&Key-Pair-Id=${encodeURIComponent(cdn.keyPairId)}`;
}

/**
 * Where one claim of a job may store its image: `images/<128 random bits>`. A fresh prefix per
 * attempt means a worker that lost its lease can only ever write where nobody reads, and keys
 * say nothing about who owns them.
 */
export function newAttemptPrefix(): string {
  return `images/${randomBytes(16).toString('hex')}`;
}

/**
 * The two objects of image `index` of an attempt. Every key sits directly under the prefix (the
 * orphan sweep maps a key to its attempt by cutting the last path segment); index 0 keeps the
 * names single-image jobs always had.
 */
export function attemptKeys(prefix: string, index = 0): { original: string; thumb: string } {
  const suffix = index === 0 ? '' : `-${index}`;
  return { original: `${prefix}/original${suffix}.png`, thumb: `${prefix}/thumb${suffix}.webp` };
}
