import { generateKeyPairSync, verify } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { startEmbeddedS3, type EmbeddedS3 } from '@pingvas/local-services';
import { attemptKeys, newAttemptPrefix, ObjectStore, signCdnUrl, type ObjectStoreConfig } from './object-store.js';

let s3: EmbeddedS3;
let store: ObjectStore;
beforeAll(async () => {
  s3 = await startEmbeddedS3();
  store = new ObjectStore({ ...s3, forcePathStyle: true, presignSeconds: 900 });
});
afterAll(async () => {
  store.client.destroy();
  await s3.close();
});
afterEach(() => {
  vi.useRealTimers();
});

/** Signs as of `at`, with only Date faked so that fetch and the SDK's own timers keep working. */
async function signedAt<T>(at: Date, sign: () => Promise<T>): Promise<T> {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(at);
  try {
    return await sign();
  } finally {
    vi.useRealTimers();
  }
}

/** A URL with its query parameters in sorted order, still encoded exactly as given. */
function normalized(url: string): string {
  const [base, query = ''] = url.split('?');
  return `${base}?${query.split('&').sort().join('&')}`;
}

/**
 * The reference: the SDK's getSignedUrl on a client configured alike, minus the `x-id`
 * marker it adds to the query (S3 ignores it; our URLs do without).
 */
function referenceClient(config: ObjectStoreConfig): S3Client {
  const client = new S3Client({
    endpoint: config.endpoint,
    region: config.region,
    forcePathStyle: config.forcePathStyle,
    credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  client.middlewareStack.add(
    (next) => (args) => {
      delete (args.request as { query: Record<string, unknown> }).query['x-id'];
      return next(args);
    },
    { step: 'build', name: 'dropOperationMarker' },
  );
  return client;
}

describe('ObjectStore presigning', () => {
  const base = {
    bucket: 'pingvas',
    accessKeyId: 'AKIDEXAMPLE',
    secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
    presignSeconds: 900,
  };
  const configs: [string, ObjectStoreConfig][] = [
    [
      'path-style endpoint with a port',
      { ...base, endpoint: 'http://127.0.0.1:9000', region: 'us-east-1', forcePathStyle: true },
    ],
    [
      'virtual-hosted custom endpoint',
      { ...base, endpoint: 'https://storage.example.test', region: 'auto', forcePathStyle: false },
    ],
    [
      'IP endpoint without forcePathStyle (path-style all the same)',
      { ...base, endpoint: 'http://10.1.2.3:9000', region: 'us-east-1', forcePathStyle: false },
    ],
    ['AWS, no endpoint', { ...base, region: 'eu-west-1', forcePathStyle: false }],
    ['AWS, no endpoint, path-style', { ...base, region: 'ap-southeast-2', forcePathStyle: true }],
    [
      'AWS, a bucket name with dots (path-style all the same)',
      { ...base, bucket: 'media.example.test', region: 'us-west-2', forcePathStyle: false },
    ],
  ];
  const keys = ['images/0b5b5c8e-1111-4a4a-9f9f-222233334444/thumb.webp', "odd/a b+c=d&e!'()*~é/ü.png"];

  it.each(configs)('signs exactly like the AWS SDK: %s', async (_label, config) => {
    const ours = new ObjectStore(config);
    const reference = referenceClient(config);
    try {
      // Two instants on different UTC days: the cached signing key must follow the date.
      for (const at of [new Date('2026-11-26T23:59:59.250Z'), new Date('2026-11-27T00:00:01Z')]) {
        for (const key of keys) {
          const expiresIn = config.presignSeconds;
          const [get, put, download, sizedPut] = await signedAt(at, () =>
            Promise.all([
              ours.readUrl(key),
              ours.presignPut(key, 'image/webp'),
              ours.presignGet(key, { contentDisposition: 'attachment; filename="pingvas-1.png"' }),
              ours.presignPut(key, 'image/png', { contentLength: 123_456, expiresSeconds: 120 }),
            ]),
          );
          const [refGet, refPut, refDownload, refSizedPut] = await signedAt(at, () =>
            Promise.all([
              getSignedUrl(reference, new GetObjectCommand({ Bucket: config.bucket, Key: key }), { expiresIn }),
              // The SDK leaves Content-Type unsigned unless asked; we always bind it.
              getSignedUrl(
                reference,
                new PutObjectCommand({ Bucket: config.bucket, Key: key, ContentType: 'image/webp' }),
                {
                  expiresIn,
                  signableHeaders: new Set(['content-type']),
                },
              ),
              getSignedUrl(
                reference,
                new GetObjectCommand({
                  Bucket: config.bucket,
                  Key: key,
                  ResponseContentDisposition: 'attachment; filename="pingvas-1.png"',
                }),
                { expiresIn },
              ),
              // A worker's upload URL binds the exact length too: S3 refuses a body of any other size.
              getSignedUrl(
                reference,
                new PutObjectCommand({
                  Bucket: config.bucket,
                  Key: key,
                  ContentType: 'image/png',
                  ContentLength: 123_456,
                }),
                { expiresIn: 120, signableHeaders: new Set(['content-type', 'content-length']) },
              ),
            ]),
          );
          expect(normalized(sizedPut)).toBe(normalized(refSizedPut));
          expect(new URL(sizedPut).searchParams.get('X-Amz-SignedHeaders')).toBe('content-length;content-type;host');
          expect(normalized(get)).toBe(normalized(refGet));
          expect(normalized(put)).toBe(normalized(refPut));
          expect(normalized(download)).toBe(normalized(refDownload));
        }
      }
    } finally {
      ours.client.destroy();
      reference.destroy();
    }
  });

  it('binds the Content-Type into the PUT signature', async () => {
    const at = new Date('2026-11-26T12:00:00Z');
    const [png, webp] = await signedAt(at, () =>
      Promise.all([store.presignPut('k/original.png', 'image/png'), store.presignPut('k/original.png', 'image/webp')]),
    );
    expect(new URL(png).searchParams.get('X-Amz-SignedHeaders')).toBe('content-type;host');
    expect(new URL(png).searchParams.get('X-Amz-Signature')).not.toBe(
      new URL(webp).searchParams.get('X-Amz-Signature'),
    );
    const get = await signedAt(at, () => store.readUrl('k/original.png'));
    expect(new URL(get).searchParams.get('X-Amz-SignedHeaders')).toBe('host');
  });
});

// s3rver checks a presigned URL's expiry and access key id, but does not verify SigV4
// signatures at all (its authentication middleware: "Signature version 4 calculation is
// unimplemented"). A tampered signature is therefore covered above, by equality with the SDK's
// signer, not here.
describe('ObjectStore presigned URLs against the embedded S3', () => {
  it('PUTs an object with the signed Content-Type and reads it back with a GET URL', async () => {
    const key = 'tests/round-trip/original.png';
    const body = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
    const put = await fetch(await store.presignPut(key, 'image/png'), {
      method: 'PUT',
      body,
      headers: { 'content-type': 'image/png' },
    });
    expect(put.status).toBe(200);
    const get = await fetch(await store.readUrl(key));
    expect(get.status).toBe(200);
    expect(get.headers.get('content-type')).toBe('image/png');
    expect(new Uint8Array(await get.arrayBuffer())).toEqual(body);
    expect(await store.getBytes(key)).toEqual(body);
  });

  it('serves a download URL as an attachment', async () => {
    const key = 'tests/download/original.png';
    await store.putBytes(key, new Uint8Array([1, 2, 3]), 'image/png');
    const response = await fetch(
      await store.presignGet(key, { contentDisposition: 'attachment; filename="pingvas-x.png"' }),
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('content-disposition')).toBe('attachment; filename="pingvas-x.png"');
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(new Uint8Array([1, 2, 3]));
  });

  it('refuses an expired URL and one with a forged access key id', async () => {
    const key = 'tests/refused/original.png';
    await store.putBytes(key, new Uint8Array([7]), 'image/png');
    const expired = await signedAt(new Date(Date.now() - (store.config.presignSeconds + 60) * 1000), () =>
      store.readUrl(key),
    );
    const expiredResponse = await fetch(expired);
    expect(expiredResponse.status).toBe(403);
    expect(await expiredResponse.text()).toContain('Request has expired');
    const expiredPut = await signedAt(new Date(Date.now() - (store.config.presignSeconds + 60) * 1000), () =>
      store.presignPut(key, 'image/png'),
    );
    expect(
      (await fetch(expiredPut, { method: 'PUT', body: new Uint8Array([8]), headers: { 'content-type': 'image/png' } }))
        .status,
    ).toBe(403);

    const forged = new URL(await store.readUrl(key));
    forged.searchParams.set(
      'X-Amz-Credential',
      forged.searchParams.get('X-Amz-Credential')!.replace(/^[^/]+/, 'SOMEONE-ELSE'),
    );
    const forgedResponse = await fetch(forged);
    expect(forgedResponse.status).toBe(403);
    expect(await forgedResponse.text()).toContain('InvalidAccessKeyId');
    expect(await store.getBytes(key)).toEqual(new Uint8Array([7]));
  });
});

describe('ObjectStore listing, heads and first bytes against the embedded S3', () => {
  it('lists every object under a prefix page by page, heads one, reads its first bytes', async () => {
    const prefix = newAttemptPrefix();
    expect(prefix).toMatch(/^images\/[0-9a-f]{32}$/);
    expect(attemptKeys(prefix)).toEqual({ original: `${prefix}/original.png`, thumb: `${prefix}/thumb.webp` });
    const keys = Array.from({ length: 25 }, (_, i) => `listing/${String(i).padStart(4, '0')}`);
    await Promise.all(keys.map((key) => store.putBytes(key, new Uint8Array([1, 2, 3, 4, 5]), 'image/png')));
    await store.putBytes('other/0000', new Uint8Array([1]), 'image/png');
    const pages: number[] = [];
    const listed: string[] = [];
    for await (const page of store.listPages('listing/', { pageSize: 10 })) {
      pages.push(page.length);
      listed.push(...page.map((o) => o.key));
      for (const object of page) expect(object.lastModified.getTime()).toBeGreaterThan(Date.now() - 600_000);
    }
    expect(pages).toEqual([10, 10, 5]);
    expect(listed.sort()).toEqual(keys);
    expect(await store.head(keys[0]!)).toEqual({ bytes: 5, contentType: 'image/png' });
    expect(await store.head('listing/missing')).toBeNull();
    expect(await store.getPrefixBytes(keys[0]!, 3)).toEqual(new Uint8Array([1, 2, 3]));
    expect(await store.getPrefixBytes(keys[0]!, 5)).toEqual(new Uint8Array([1, 2, 3, 4, 5]));
    await store.deleteKeys(keys);
    expect(await store.head(keys[0]!)).toBeNull();
  });
});

describe('signed CDN URLs (CloudFront canned policy)', () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const cdn = {
    baseUrl: 'https://cdn.example.test/',
    keyPairId: 'K2JCJMDEHXQW5F',
    privateKey: privateKey.export({ type: 'pkcs1', format: 'pem' }) as string,
    urlSeconds: 3600,
  };

  /** What the CDN does with a request: rebuild the canned policy from the URL and check the RSA-SHA1 signature. */
  function cdnAccepts(url: string, nowSeconds: number): boolean {
    const parsed = new URL(url);
    const expires = Number(parsed.searchParams.get('Expires'));
    const resource = `${parsed.origin}${parsed.pathname}`;
    const condition = { DateLessThan: { 'AWS:EpochTime': expires } };
    const policy = JSON.stringify({ Statement: [{ Resource: resource, Condition: condition }] });
    const encoded = parsed.searchParams.get('Signature')!.replace(/-/g, '+').replace(/_/g, '=').replace(/~/g, '/');
    const signature = Buffer.from(encoded, 'base64');
    return (
      parsed.searchParams.get('Key-Pair-Id') === cdn.keyPairId &&
      nowSeconds < expires &&
      verify('RSA-SHA1', Buffer.from(policy), publicKey, signature)
    );
  }

  it('signs the URL and an expiry, rounded up to 5 minutes so reloads reuse (and cache) the same URL', () => {
    const now = Date.UTC(2026, 10, 28, 12, 0, 10);
    const url = signCdnUrl(cdn, 'images/0123abcd/thumb.webp', now);
    const [resource, query] = url.split('?');
    expect(resource).toBe('https://cdn.example.test/images/0123abcd/thumb.webp');
    expect(query).toMatch(/^Expires=\d+&Signature=[A-Za-z0-9~_-]+&Key-Pair-Id=K2JCJMDEHXQW5F$/);
    const expires = Number(new URL(url).searchParams.get('Expires'));
    expect(expires % 300).toBe(0);
    expect(expires - now / 1000).toBeGreaterThanOrEqual(3600);
    expect(expires - now / 1000).toBeLessThan(3600 + 300);
    expect(signCdnUrl(cdn, 'images/0123abcd/thumb.webp', now + 60_000)).toBe(url);
    expect(cdnAccepts(url, now / 1000)).toBe(true);
    expect(cdnAccepts(url, expires)).toBe(false);
    expect(cdnAccepts(url.replace('thumb.webp', 'original.png'), now / 1000)).toBe(false);
    expect(cdnAccepts(url.replace(/Expires=\d+/, `Expires=${expires + 86_400}`), now / 1000)).toBe(false);
  });

  it('is what readUrl gives when a CDN is configured', async () => {
    const cdnStore = new ObjectStore({ ...s3, forcePathStyle: true, presignSeconds: 900, cdn });
    try {
      const url = await cdnStore.readUrl('images/0123abcd/original.png');
      expect(url.startsWith('https://cdn.example.test/images/0123abcd/original.png?Expires=')).toBe(true);
      expect(cdnAccepts(url, Date.now() / 1000)).toBe(true);
    } finally {
      cdnStore.client.destroy();
    }
  });
});
