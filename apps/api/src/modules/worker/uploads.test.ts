import { describe, expect, it } from 'vitest';
import { maxUploadBytes, MAX_ORIGINAL_BYTES, type ClaimedJob } from '@pingvas/core';
import type { TestApp } from '../../test/harness.js';
import { reconcileOnce } from '../generation/reconciler.task.js';
import { fundedUser, pngOf, smallParams, TINY_WEBP, uploadResult } from '../../test/factories.js';
import {
  balanceOf,
  claim,
  completeClaimed,
  expireLease,
  jobRow,
  reportComplete,
  useGenerationTestApp,
} from '../generation/generation.test-support.js';

let app: TestApp;
useGenerationTestApp((created) => {
  app = created;
});

const worker = () => app.workerCaller();
const leaseOf = (claimed: ClaimedJob) => ({ jobId: claimed.job.id, leaseToken: claimed.lease.token });

async function put(url: string, body: Buffer, contentType: string): Promise<number> {
  const response = await fetch(url, { method: 'PUT', body, headers: { 'content-type': contentType } });
  await response.body?.cancel();
  return response.status;
}

async function claimedJob(width = 512, height = 512): Promise<ClaimedJob> {
  const user = await fundedUser(app, 'pro', 500);
  await app.callerFor(user).generation.create(smallParams({ width, height }));
  return (await claim(app))!;
}

/** Nothing a refused complete may change: the run goes on, no image, the hold untouched. */
async function expectUnchanged(claimed: ClaimedJob): Promise<void> {
  expect(await jobRow(app, claimed.job.id)).toMatchObject({ status: 'in_progress', lease_token: claimed.lease.token });
  const [images] = await app.database.admin`select count(*)::int as n from images where job_id = ${claimed.job.id}`;
  expect(images!.n).toBe(0);
}

describe('upload URLs', () => {
  it('point under the attempt prefix, live minutes, and sign Content-Type and the exact byte count', async () => {
    const claimed = await claimedJob();
    const { attempt_prefix: prefix } = await jobRow(app, claimed.job.id);
    const target = await worker().uploadUrl({ ...leaseOf(claimed), object: 'original', bytes: 1234 });
    const url = new URL(target.url);
    expect(decodeURIComponent(url.pathname)).toBe(`/${app.config.S3_BUCKET}/${prefix}/original.png`);
    expect(url.searchParams.get('X-Amz-SignedHeaders')).toBe('content-length;content-type;host');
    expect(url.searchParams.get('X-Amz-Expires')).toBe(String(app.config.S3_UPLOAD_URL_SECONDS));
    expect(app.config.S3_UPLOAD_URL_SECONDS).toBeLessThanOrEqual(300);
    expect(target.contentType).toBe('image/png');
    expect(target.expiresAt.getTime() - Date.now()).toBeLessThanOrEqual(app.config.S3_UPLOAD_URL_SECONDS * 1000);
    const thumb = await worker().uploadUrl({ ...leaseOf(claimed), object: 'thumb', bytes: 99 });
    expect(decodeURIComponent(new URL(thumb.url).pathname)).toBe(`/${app.config.S3_BUCKET}/${prefix}/thumb.webp`);
    expect(thumb.contentType).toBe('image/webp');
  });

  it('each attempt gets a fresh random prefix', async () => {
    const first = await claimedJob();
    const before = (await jobRow(app, first.job.id)).attempt_prefix;
    await worker().release(leaseOf(first));
    const second = (await claim(app))!;
    expect(second.job.id).toBe(first.job.id);
    const after = (await jobRow(app, second.job.id)).attempt_prefix;
    expect(after).toMatch(/^images\/[0-9a-f]{32}$/);
    expect(after).not.toBe(before);
  });

  it('refuses a byte count over the job’s bound, a zero or huge one, and a caller without the lease', async () => {
    const claimed = await claimedJob(512, 512);
    const limit = maxUploadBytes('original', { width: 512, height: 512 });
    await expect(
      worker().uploadUrl({ ...leaseOf(claimed), object: 'original', bytes: limit + 1 }),
    ).rejects.toMatchObject({
      code: 'BAD_REQUEST',
      message: expect.stringContaining(`at most ${limit} bytes`),
    });
    await expect(
      worker().uploadUrl({
        ...leaseOf(claimed),
        object: 'thumb',
        bytes: maxUploadBytes('thumb', claimed.job.params) + 1,
      }),
    ).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    for (const bytes of [0, -1, 1.5, MAX_ORIGINAL_BYTES + 1, 2 ** 53, Number.MAX_VALUE]) {
      await expect(worker().uploadUrl({ ...leaseOf(claimed), object: 'original', bytes })).rejects.toMatchObject({
        code: 'BAD_REQUEST',
      });
    }
    await expect(
      worker().uploadUrl({ jobId: claimed.job.id, leaseToken: crypto.randomUUID(), object: 'original', bytes: 10 }),
    ).rejects.toMatchObject({ cause: { code: 'LEASE_LOST' } });
    await expect(worker().uploadUrl({ ...leaseOf(claimed), object: 'original', bytes: limit })).resolves.toMatchObject({
      contentType: 'image/png',
    });
  });

  it('a worker that lost its lease cannot overwrite the finished image, nor get new URLs, nor complete', async () => {
    const user = await fundedUser(app, 'free', 100);
    const { jobId } = await app.callerFor(user).generation.create(smallParams());
    const stale = (await claim(app))!;
    // While it still held the lease, the stale worker got URLs (valid for minutes yet).
    const staleOriginal = await worker().uploadUrl({
      ...leaseOf(stale),
      object: 'original',
      bytes: pngOf(512, 512).length,
    });
    await expireLease(app, jobId);
    await reconcileOnce(app.deps);
    const fresh = (await claim(app))!;
    expect(await completeClaimed(app, fresh, 3)).toEqual({ creditsCharged: 3, replayed: false });
    const [image] = await app.database.admin<
      { original_key: string }[]
    >`select original_key from images where job_id = ${jobId}`;
    const finished = Buffer.from(await app.deps.store.getBytes(image!.original_key));

    // The zombie wakes up and uploads a different picture of the same length with its old URL.
    const forged = Buffer.from(pngOf(512, 512));
    forged[forged.length - 20]! ^= 0xff;
    expect(await put(staleOriginal.url, forged, 'image/png')).toBe(200);
    expect(Buffer.from(await app.deps.store.getBytes(image!.original_key))).toEqual(finished);
    expect(new URL(staleOriginal.url).pathname).not.toContain(image!.original_key);

    await expect(worker().uploadUrl({ ...leaseOf(stale), object: 'original', bytes: 10 })).rejects.toMatchObject({
      cause: { code: 'LEASE_LOST' },
    });
    await expect(reportComplete(app, stale, 3)).rejects.toMatchObject({ cause: { code: 'LEASE_LOST' } });
    expect(await balanceOf(app, user.id)).toEqual({ available: 97, held: 0 });
  });
});

describe('worker.complete checks the report and the stored objects', () => {
  it('refuses a size other than the job’s, or over-large numbers, with BAD_REQUEST and no change', async () => {
    const claimed = await claimedJob(512, 384);
    await uploadResult(app, claimed);
    const bytes = pngOf(512, 384).length;
    const attempts = [
      { width: 384, height: 512, bytes },
      { width: 512, height: 384, bytes: bytes + 1 },
      { width: 512, height: 384, bytes: maxUploadBytes('original', { width: 512, height: 384 }) + 1 },
      { width: 2 ** 31, height: 384, bytes },
      { width: 512, height: 2 ** 53, bytes },
      { width: 512, height: 384, bytes: 2 ** 63 },
      { width: 512, height: 384, bytes: -4 },
      { width: 512.5, height: 384, bytes },
    ];
    for (const image of attempts) {
      await expect(
        worker().complete({ ...leaseOf(claimed), engineSeconds: 1, images: [image], engine: 'reference' }),
      ).rejects.toMatchObject({
        code: 'BAD_REQUEST',
      });
    }
    await expect(
      worker().complete({
        ...leaseOf(claimed),
        engineSeconds: 1,
        images: [{ width: 384, height: 512, bytes }],
        engine: 'reference',
      }),
    ).rejects.toThrow('The image is 384×512, but the job asked for 512×384.');
    await expectUnchanged(claimed);
    expect(await reportComplete(app, claimed, 1)).toEqual({ creditsCharged: 1, replayed: false });
  });

  it('refuses stored objects unlike the report: wrong dimensions, not a PNG, wrong type, too long', async () => {
    const claimed = await claimedJob(512, 512);
    const lease = leaseOf(claimed);
    const report = (bytes: number) =>
      worker().complete({
        ...lease,
        engineSeconds: 1,
        images: [{ width: 512, height: 512, bytes }],
        engine: 'reference',
      });
    const store = async (object: 'original' | 'thumb', body: Buffer) => {
      const target = await worker().uploadUrl({ ...lease, object, bytes: body.length });
      expect(await put(target.url, body, target.contentType)).toBe(200);
    };
    await store('thumb', TINY_WEBP);

    await expect(report(pngOf(512, 512).length)).rejects.toThrow(
      'Upload the original and the thumbnail before completing the job.',
    );
    await store('original', pngOf(256, 512));
    await expect(report(pngOf(256, 512).length)).rejects.toThrow(
      'The stored original is 256×512, but the job asked for 512×512.',
    );
    const notPng = Buffer.alloc(pngOf(512, 512).length, 7);
    await store('original', notPng);
    await expect(report(notPng.length)).rejects.toThrow('The stored original is not a PNG.');

    // The embedded S3 does not check signatures, so a body longer than the one signed for gets
    // stored there (real S3 refuses it); the API's own check on the stored size catches it.
    const signedFor = pngOf(512, 512).length;
    const target = await worker().uploadUrl({ ...lease, object: 'original', bytes: signedFor });
    expect(await put(target.url, Buffer.concat([pngOf(512, 512), Buffer.alloc(1000)]), 'image/png')).toBe(200);
    await expect(report(signedFor)).rejects.toThrow(
      `The stored original is ${signedFor + 1000} bytes, not the ${signedFor} reported.`,
    );

    const { attempt_prefix: prefix } = await jobRow(app, claimed.job.id);
    await app.deps.store.putBytes(`${prefix}/original.png`, new Uint8Array(), 'image/png');
    await expect(report(signedFor)).rejects.toThrow('The stored original is empty.');
    await app.deps.store.putBytes(`${prefix}/original.png`, pngOf(512, 512), 'text/plain');
    await expect(report(signedFor)).rejects.toThrow('The stored original is text/plain, not image/png.');
    await app.deps.store.putBytes(`${prefix}/thumb.webp`, pngOf(16, 16), 'image/webp');
    await store('original', pngOf(512, 512));
    await expect(report(signedFor)).rejects.toThrow('The stored thumbnail is not a WebP.');
    const tooLong = Buffer.alloc(maxUploadBytes('thumb', claimed.job.params) + 1);
    await app.deps.store.putBytes(`${prefix}/thumb.webp`, tooLong, 'image/webp');
    await expect(report(signedFor)).rejects.toThrow(/^The stored thumb is \d+ bytes, over the bound of \d+\.$/);
    await expectUnchanged(claimed);

    await store('thumb', TINY_WEBP);
    expect(await report(signedFor)).toEqual({ creditsCharged: 1, replayed: false });
  });
});
