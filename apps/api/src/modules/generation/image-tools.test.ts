import { describe, expect, it } from 'vitest';
import {
  chargeCredits,
  DEFAULT_STRENGTH,
  estimateImg2img,
  estimateTxt2img,
  estimateUpscale,
  MAX_JOB_ATTEMPTS,
  UPSCALE_MODEL_ID,
} from '@pingvas/core';
import type { TestApp } from '../../test/harness.js';
import { fundedUser, pngOf, smallParams } from '../../test/factories.js';
import { checkedUpload, photo, putUpload } from '../uploads/uploads.test-support.js';
import {
  balanceOf,
  completeClaimed,
  followJob,
  jobRow,
  reportComplete,
  useGenerationTestApp,
} from './generation.test-support.js';
import { claimOf, expectRefusedUnchanged, fetchBytes, galleryImage } from './image-tools.test-support.js';
import { dequeue } from './queue.js';
import { reconcileOnce } from './reconciler.task.js';

/**
 * Each job kind end to end: create (hold) → claim (inputs) → upload per index → complete
 * (gallery rows with lineage, one capture) or fail (refund); and the refusals, which hold nothing.
 */

let app: TestApp;
useGenerationTestApp((created) => {
  app = created;
});
const worker = () => app.workerCaller();

async function uploadRow(uploadId: string) {
  const [row] = await app.database.admin`select * from uploads where id = ${uploadId}`;
  return row!;
}

async function imagesOf(jobId: string) {
  return app.database.admin`select * from images where job_id = ${jobId} order by job_index`;
}

describe('txt2img batches', () => {
  it('holds count × the price, hands out one upload per index, and completes with count gallery images', async () => {
    const user = await fundedUser(app, 'free', 100);
    const input = { ...smallParams({ seed: 77 }), count: 3 };
    const estimate = await app.callerFor(user).credits.estimate(input);
    expect(estimate.credits).toBe(estimateTxt2img({ ...input }));
    expect(estimate.credits).toBe(3 * estimateTxt2img(smallParams()));
    const created = await app.callerFor(user).generation.create(input);
    expect(created).toMatchObject({ kind: 'txt2img', estimatedCredits: estimate.credits });
    expect(await balanceOf(app, user.id)).toEqual({ available: 100 - estimate.credits, held: estimate.credits });

    const claimed = await claimOf(app, created.jobId);
    expect(claimed.job).toMatchObject({ kind: 'txt2img', count: 3, inputs: {} });
    expect(claimed.job.strength).toBeUndefined();
    expect(claimed.job.upscale).toBeUndefined();
    const lease = { jobId: created.jobId, leaseToken: claimed.lease.token };
    await expect(worker().uploadUrl({ ...lease, object: 'original', index: 3, bytes: 100 })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
      message: 'This job makes 3 images: index must be below 3.',
    });
    const signed = await worker().uploadUrl({ ...lease, object: 'thumb', index: 2, bytes: 100 });
    const { attempt_prefix: prefix } = await jobRow(app, created.jobId);
    expect(decodeURIComponent(new URL(signed.url).pathname)).toMatch(new RegExp(`/${prefix}/thumb-2\\.webp$`));

    // A report of fewer images than the job makes is refused, and changes nothing.
    const image = { width: 512, height: 512, bytes: pngOf(512, 512).length };
    await expect(
      worker().complete({ ...lease, engineSeconds: 3, images: [image, image], engine: 'reference' }),
    ).rejects.toMatchObject({ code: 'BAD_REQUEST', message: 'This job makes 3 images; 2 were reported.' });
    expect(await jobRow(app, created.jobId)).toMatchObject({ status: 'in_progress' });

    const live = followJob(app, user.id, created.jobId);
    await live.next('snapshot');
    expect(await completeClaimed(app, claimed, 3)).toEqual({
      creditsCharged: chargeCredits(3, estimate.credits),
      replayed: false,
    });
    const rows = await imagesOf(created.jobId);
    // The live event and a late subscriber's snapshot both carry every image, in index order.
    const made = rows.map((row) => ({ id: row.id, width: 512, height: 512 }));
    expect(await live.next('completed')).toMatchObject({ image: made[0], images: made });
    await live.stop();
    const late = followJob(app, user.id, created.jobId);
    expect(await late.next('completed')).toMatchObject({ image: made[0], images: made });
    await late.stop();
    expect(rows.map((row) => [row.job_index, row.seed, row.kind, row.parent_image_id])).toEqual([
      [0, '77', 'txt2img', null],
      [1, '78', 'txt2img', null],
      [2, '79', 'txt2img', null],
    ]);
    expect(rows.map((row) => row.original_key)).toEqual([
      `${prefix}/original.png`,
      `${prefix}/original-1.png`,
      `${prefix}/original-2.png`,
    ]);
    const charged = chargeCredits(3, estimate.credits);
    expect(await balanceOf(app, user.id)).toEqual({ available: 100 - charged, held: 0 });

    // A replay answers the same and makes nothing twice.
    expect(await reportComplete(app, claimed, 3)).toEqual({ creditsCharged: charged, replayed: true });
    expect(await imagesOf(created.jobId)).toHaveLength(3);

    const view = await app.callerFor(user).generation.get({ jobId: created.jobId });
    expect(view).toMatchObject({ kind: 'txt2img', count: 3, strength: null, upscale: null });
    expect(view.sources).toEqual({ initImage: null, mask: null });
    expect(view.images.map((shown) => [shown.id, shown.index])).toEqual(rows.map((row) => [row.id, row.job_index]));
    expect(view.image).toEqual(view.images[0]);
    expect(await fetchBytes(view.images[2]!.url)).toEqual(pngOf(512, 512));
    const listed = await app.callerFor(user).generation.list({ limit: 5 });
    expect(listed.items[0]!.images.map((shown) => shown.id)).toEqual(view.images.map((shown) => shown.id));

    // Each is its own gallery image, and "use these settings" makes exactly that one again.
    const second = await app.callerFor(user).gallery.get({ imageId: rows[1]!.id as string });
    expect(second).toMatchObject({ kind: 'txt2img', jobIndex: 1, parent: null, children: [], upscale: null });
    expect(second.createInput).toEqual({ ...smallParams({ seed: 78 }), sampler: second.sampler });
    const gallery = await app.callerFor(user).gallery.list({ limit: 3 });
    expect(gallery.items.map((item) => item.kind)).toEqual(['txt2img', 'txt2img', 'txt2img']);
  });
});

describe('img2img from an upload', () => {
  it('retains the upload, prices the steps it runs, and hands the worker the stored PNG', async () => {
    const user = await fundedUser(app, 'free', 100);
    const uploadId = await checkedUpload(app, user, 300, 200);
    const input = { ...smallParams(), initImage: { uploadId }, strength: 0.5, count: 2 };
    const estimate = await app.callerFor(user).credits.estimate(input);
    expect(estimate.credits).toBe(estimateImg2img({ ...smallParams(), strength: 0.5, count: 2 }));
    const created = await app.callerFor(user).generation.create(input);
    expect(created).toMatchObject({ kind: 'img2img', estimatedCredits: estimate.credits });
    expect(await balanceOf(app, user.id)).toEqual({ available: 100 - estimate.credits, held: estimate.credits });

    const upload = await uploadRow(uploadId);
    expect(upload.expires_at).toBeNull();
    expect(await jobRow(app, created.jobId)).toMatchObject({
      kind: 'img2img',
      count: 2,
      strength: 0.5,
      init_upload_id: uploadId,
      init_image_id: null,
      init_key: upload.image_key,
      init_width: 300,
      init_height: 200,
      mask_key: null,
    });

    const claimed = await claimOf(app, created.jobId);
    expect(claimed.job).toMatchObject({
      kind: 'img2img',
      count: 2,
      strength: 0.5,
      params: { width: 512, height: 512 },
      inputs: { initImage: { width: 300, height: 200 } },
    });
    expect(claimed.job.inputs.mask).toBeUndefined();
    const expires = Number(new URL(claimed.job.inputs.initImage!.url).searchParams.get('X-Amz-Expires'));
    expect(expires).toBeGreaterThanOrEqual(app.config.LEASE_SECONDS);
    expect(await fetchBytes(claimed.job.inputs.initImage!.url)).toEqual(
      Buffer.from(await app.deps.store.getBytes(upload.image_key as string)),
    );

    await completeClaimed(app, claimed, 2);
    const rows = await imagesOf(created.jobId);
    expect(rows.map((row) => [row.kind, row.job_index, row.parent_image_id])).toEqual([
      ['img2img', 0, null],
      ['img2img', 1, null],
    ]);
    const view = await app.callerFor(user).generation.get({ jobId: created.jobId });
    expect(view).toMatchObject({ kind: 'img2img', strength: 0.5, count: 2 });
    expect(view.sources.mask).toBeNull();
    expect(view.sources.initImage).toMatchObject({ uploadId, imageId: null, width: 300, height: 200 });
    expect(await fetchBytes(view.sources.initImage!.url!)).toEqual(
      Buffer.from(await app.deps.store.getBytes(upload.image_key as string)),
    );

    const detail = await app.callerFor(user).gallery.get({ imageId: rows[1]!.id as string });
    expect(detail).toMatchObject({ kind: 'img2img', jobIndex: 1, parent: null });
    expect(detail.sources).toEqual(view.sources);
    // "Use these settings" gives exactly what generation.create takes, and it is accepted.
    expect(detail.createInput).toEqual({
      ...smallParams({ seed: detail.seed }),
      sampler: detail.sampler,
      initImage: { uploadId },
      strength: 0.5,
    });
    const again = await app.callerFor(user).generation.create(detail.createInput!);
    expect(again).toMatchObject({
      kind: 'img2img',
      estimatedCredits: estimateImg2img({ ...smallParams(), strength: 0.5 }),
    });
  });

  it('uses the default strength when none is given', async () => {
    const user = await fundedUser(app, 'free', 100);
    const uploadId = await checkedUpload(app, user, 64, 64);
    const { jobId, estimatedCredits } = await app
      .callerFor(user)
      .generation.create({ ...smallParams(), initImage: { uploadId } });
    expect(estimatedCredits).toBe(estimateImg2img({ ...smallParams(), strength: DEFAULT_STRENGTH }));
    expect((await jobRow(app, jobId)).strength).toBe(DEFAULT_STRENGTH);
  });

  it('refunds the whole hold when every attempt fails', async () => {
    const user = await fundedUser(app, 'free', 100);
    const uploadId = await checkedUpload(app, user, 64, 64);
    const { jobId } = await app.callerFor(user).generation.create({ ...smallParams(), initImage: { uploadId } });
    for (let attempt = 1; attempt <= MAX_JOB_ATTEMPTS; attempt += 1) {
      const claimed = await claimOf(app, jobId);
      // Every retry gets the same input, freshly signed.
      expect(claimed.job.inputs.initImage).toMatchObject({ width: 64, height: 64 });
      await worker().fail({ jobId, leaseToken: claimed.lease.token, code: 'ENGINE_ERROR', message: 'no' });
    }
    expect(await jobRow(app, jobId)).toMatchObject({ status: 'failed', charged_credits: 0 });
    expect(await balanceOf(app, user.id)).toEqual({ available: 100, held: 0 });
    expect(await imagesOf(jobId)).toHaveLength(0);
  });
});

describe('inpaint from a gallery image', () => {
  it('hands out the init image and the mask, and links the results to their parent', async () => {
    const user = await fundedUser(app, 'free', 200);
    const source = await galleryImage(app, user);
    const mask = await checkedUpload(app, user, 512, 512);
    const input = { ...smallParams(), initImage: { imageId: source.id }, mask: { uploadId: mask }, strength: 0.8 };
    const created = await app.callerFor(user).generation.create(input);
    expect(created).toMatchObject({
      kind: 'inpaint',
      estimatedCredits: estimateImg2img({ ...smallParams(), strength: 0.8 }),
    });
    const maskRow = await uploadRow(mask);
    expect(await jobRow(app, created.jobId)).toMatchObject({
      kind: 'inpaint',
      init_image_id: source.id,
      init_upload_id: null,
      init_key: source.originalKey,
      mask_upload_id: mask,
      mask_key: maskRow.image_key,
    });

    // While the job waits, its source cannot be deleted.
    await expectRefusedUnchanged(app, user, () => app.callerFor(user).gallery.delete({ imageId: source.id }), {
      code: 'CONFLICT',
      message: 'This image is the input of a job that has not finished',
    });
    await expect(app.callerFor(user).gallery.deleteMany({ imageIds: [source.id] })).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    expect(await app.database.admin`select id from images where id = ${source.id}`).toHaveLength(1);

    const claimed = await claimOf(app, created.jobId);
    // Nor while it runs.
    await expectRefusedUnchanged(app, user, () => app.callerFor(user).gallery.delete({ imageId: source.id }), {
      code: 'CONFLICT',
    });
    expect(claimed.job).toMatchObject({
      kind: 'inpaint',
      strength: 0.8,
      inputs: { initImage: { width: 512, height: 512 }, mask: { width: 512, height: 512 } },
    });
    expect(await fetchBytes(claimed.job.inputs.initImage!.url)).toEqual(pngOf(512, 512));
    expect(await fetchBytes(claimed.job.inputs.mask!.url)).toEqual(
      Buffer.from(await app.deps.store.getBytes(maskRow.image_key as string)),
    );
    await completeClaimed(app, claimed);
    const [child] = await imagesOf(created.jobId);
    expect(child).toMatchObject({ kind: 'inpaint', parent_image_id: source.id });

    const detail = await app.callerFor(user).gallery.get({ imageId: child!.id as string });
    expect(detail.parent).toMatchObject({ id: source.id });
    expect(detail.sources).toMatchObject({
      initImage: { imageId: source.id, uploadId: null, width: 512, height: 512 },
      mask: { uploadId: mask, imageId: null, width: 512, height: 512 },
    });
    expect(detail.createInput).toMatchObject({
      initImage: { imageId: source.id },
      mask: { uploadId: mask },
      strength: 0.8,
    });
    const parent = await app.callerFor(user).gallery.get({ imageId: source.id });
    expect(parent.children).toEqual([{ id: child!.id, kind: 'inpaint', thumbUrl: expect.any(String) }]);

    // Once the job is done the source may go; the child keeps its pixels but not its recipe.
    expect(await app.callerFor(user).gallery.delete({ imageId: source.id })).toEqual({
      imageId: source.id,
      deleted: true,
    });
    const orphaned = await app.callerFor(user).gallery.get({ imageId: child!.id as string });
    expect(orphaned.parent).toBeNull();
    expect(orphaned.createInput).toBeNull();
    expect(orphaned.sources.initImage).toEqual({ uploadId: null, imageId: null, width: 512, height: 512, url: null });
  });
});

describe('generation.upscale', () => {
  it('goes only to workers with an upscaler, whatever model made its source (also when the reconciler queues it)', async () => {
    const user = await fundedUser(app, 'free', 200);
    const source = await galleryImage(app, user, smallParams());
    const created = await app.callerFor(user).generation.upscale({ imageId: source.id, scale: 2 });
    const claimWith = (loadable: string[]) =>
      worker().claim({ workerId: `w-${loadable.join('+')}`, engineVersion: 'test', models: { warm: [], loadable } });
    for (const queuedBy of ['create', 'reconciler'] as const) {
      if (queuedBy === 'reconciler') {
        expect(await dequeue(app.deps, created.jobId)).toBe(true);
        expect(await reconcileOnce(app.deps)).toMatchObject({ requeued: 1 });
      }
      // The source's own model is no reason to hand a worker the upscale.
      expect(await claimWith([smallParams().model, 'sdxl'])).toBeNull();
      if (queuedBy === 'create') continue;
      const claimed = await claimWith(['sdxl', UPSCALE_MODEL_ID]);
      expect(claimed).toMatchObject({ job: { id: created.jobId, kind: 'upscale' } });
    }
  });

  it('prices by the ESRGAN output, delivers source × scale, and links it to its source', async () => {
    const user = await fundedUser(app, 'free', 200);
    const source = await galleryImage(app, user, smallParams({ seed: 9, width: 512, height: 384 }));
    const expected = estimateUpscale({ width: 512, height: 384 }, 2);
    expect(await app.callerFor(user).credits.estimateUpscale({ imageId: source.id, scale: 2 })).toEqual({
      credits: expected,
      width: 1024,
      height: 768,
      balance: (await balanceOf(app, user.id)).available,
      enough: true,
    });
    const created = await app.callerFor(user).generation.upscale({ imageId: source.id, scale: 2 });
    expect(created).toMatchObject({ kind: 'upscale', estimatedCredits: expected });
    expect(await jobRow(app, created.jobId)).toMatchObject({
      kind: 'upscale',
      count: 1,
      upscale_scale: 2,
      width: 1024,
      height: 768,
      seed: '9',
      prompt: smallParams().prompt,
      init_image_id: source.id,
      init_key: source.originalKey,
      init_width: 512,
      init_height: 384,
    });

    const claimed = await claimOf(app, created.jobId);
    expect(claimed.job).toMatchObject({
      kind: 'upscale',
      count: 1,
      params: { width: 512, height: 384, seed: 9 },
      upscale: { scale: 2, width: 1024, height: 768 },
      inputs: { initImage: { width: 512, height: 384 } },
    });
    expect(await fetchBytes(claimed.job.inputs.initImage!.url)).toEqual(pngOf(512, 384));
    // The source's size is not what it delivers.
    const lease = { jobId: created.jobId, leaseToken: claimed.lease.token };
    const small = { width: 512, height: 384, bytes: pngOf(512, 384).length };
    await expect(
      worker().complete({ ...lease, engineSeconds: 1, images: [small], engine: 'reference' }),
    ).rejects.toMatchObject({ code: 'BAD_REQUEST', message: 'The image is 512×384, but the job asked for 1024×768.' });

    await completeClaimed(app, claimed, 2);
    const [made] = await imagesOf(created.jobId);
    expect(made).toMatchObject({ kind: 'upscale', width: 1024, height: 768, parent_image_id: source.id, seed: '9' });
    const detail = await app.callerFor(user).gallery.get({ imageId: made!.id as string });
    expect(detail).toMatchObject({
      kind: 'upscale',
      createInput: null,
      upscale: { sourceImageId: source.id, scale: 2 },
      parent: { id: source.id },
    });
    const view = await app.callerFor(user).generation.get({ jobId: created.jobId });
    expect(view).toMatchObject({ kind: 'upscale', upscale: { scale: 2 }, width: 1024, height: 768 });
    expect(view.sources.initImage).toMatchObject({ imageId: source.id, width: 512, height: 384 });
    expect(await balanceOf(app, user.id)).toMatchObject({ held: 0 });
  });
});

describe('deleting a source while a job is created from it', () => {
  it('ends one way only: the job keeps its source (delete refused), or the source is gone (create refused)', async () => {
    const user = await fundedUser(app, 'pro', 1000);
    for (let round = 0; round < 16; round += 1) {
      const source = await galleryImage(app, user);
      const create =
        round % 2 === 0
          ? app.callerFor(user).generation.upscale({ imageId: source.id, scale: 2 })
          : app.callerFor(user).generation.create({ ...smallParams(), initImage: { imageId: source.id } });
      const [created, deleted] = await Promise.allSettled([
        create,
        app.callerFor(user).gallery.delete({ imageId: source.id }),
      ]);
      const still = await app.database.admin`select id from images where id = ${source.id}`;
      if (created.status === 'fulfilled') {
        expect(deleted).toMatchObject({ status: 'rejected', reason: { code: 'CONFLICT' } });
        expect(still).toHaveLength(1);
        expect(await jobRow(app, created.value.jobId)).toMatchObject({ init_image_id: source.id });
        expect(await fetchBytes(await app.deps.store.readUrl(source.originalKey))).toEqual(pngOf(512, 512));
        await app.callerFor(user).generation.cancel({ jobId: created.value.jobId });
      } else {
        expect(created.reason).toMatchObject({ code: 'NOT_FOUND', message: 'Image not found.' });
        expect(deleted).toMatchObject({ status: 'fulfilled', value: { deleted: true } });
        expect(still).toHaveLength(0);
      }
    }
  });
});

describe('refused inputs hold nothing and store no job', () => {
  it('refuses bad fields by name', async () => {
    const user = await fundedUser(app, 'free', 100);
    const uploadId = await checkedUpload(app, user, 64, 64);
    const create = (input: object) => () => app.callerFor(user).generation.create({ ...smallParams(), ...input });
    const cases: [object, RegExp][] = [
      [{ initImage: { uploadId }, strength: 0 }, /strength must be at least 0.05/],
      [{ initImage: { uploadId }, strength: 2 }, /strength must be at most 1/],
      [{ count: 5 }, /count must be at most 4/],
      [{ count: 0 }, /count must be at least 1/],
      [{ mask: { uploadId } }, /mask needs an initImage/],
      [{ strength: 0.5 }, /strength applies only with an initImage/],
      [{ initImage: { uploadId, imageId: uploadId } }, /exactly one/],
      [{ initImage: { url: 'https://example.com/x.png' } }, /initImage takes only uploadId or imageId/],
    ];
    for (const [input, message] of cases) {
      await expectRefusedUnchanged(app, user, create(input as never), { code: 'BAD_REQUEST', message });
    }
    await expect(app.callerFor(user).credits.estimate({ ...smallParams(), count: 5 })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
  });

  it("treats someone else's upload or image, a refused upload and an unchecked one as not found", async () => {
    const user = await fundedUser(app, 'free', 100);
    const other = await fundedUser(app, 'free', 100);
    const theirUpload = await checkedUpload(app, other, 64, 64);
    const theirImage = await galleryImage(app, other);
    const mine = await checkedUpload(app, user, 64, 64);
    const gif = await putUpload(app, user, await photo('gif'), 'image/png');
    await expect(app.callerFor(user).uploads.complete({ uploadId: gif })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
    const unchecked = await putUpload(app, user, await photo('png'));
    const create = (input: object) => () => app.callerFor(user).generation.create({ ...smallParams(), ...input });
    const cases: [() => Promise<unknown>, string][] = [
      [create({ initImage: { uploadId: theirUpload } }), 'Upload not found.'],
      [create({ initImage: { imageId: theirImage.id } }), 'Image not found.'],
      [create({ initImage: { uploadId: mine }, mask: { uploadId: theirUpload } }), 'Upload not found.'],
      [create({ initImage: { uploadId: gif } }), 'Upload not found.'],
      [create({ initImage: { uploadId: unchecked } }), 'Upload not found.'],
      [create({ initImage: { imageId: crypto.randomUUID() } }), 'Image not found.'],
      [() => app.callerFor(user).generation.upscale({ imageId: theirImage.id, scale: 2 }), 'Image not found.'],
      [() => app.callerFor(user).credits.estimateUpscale({ imageId: theirImage.id, scale: 2 }), 'Image not found.'],
    ];
    for (const [call, message] of cases) {
      await expectRefusedUnchanged(app, user, call, { code: 'NOT_FOUND', message });
    }
    // The other user's upload was not retained by the refused attempts.
    expect((await uploadRow(theirUpload)).expires_at).not.toBeNull();
  });

  it('refuses a mask of another size than the init image, naming both', async () => {
    const user = await fundedUser(app, 'free', 100);
    const init = await checkedUpload(app, user, 96, 64);
    const mask = await checkedUpload(app, user, 64, 96);
    await expectRefusedUnchanged(
      app,
      user,
      () =>
        app
          .callerFor(user)
          .generation.create({ ...smallParams(), initImage: { uploadId: init }, mask: { uploadId: mask } }),
      { code: 'BAD_REQUEST', message: 'The mask is 64×96 but the init image is 96×64' },
    );
    // Rolled back with the hold: neither upload is retained.
    expect((await uploadRow(init)).expires_at).not.toBeNull();
    expect((await uploadRow(mask)).expires_at).not.toBeNull();
  });

  it('refuses an upscale whose result would be too large, and a plan-sized create beyond the plan', async () => {
    const user = await fundedUser(app, 'free', 100);
    const source = await galleryImage(app, user);
    await app.database.admin`update images set width = 1536, height = 1536 where id = ${source.id}`;
    const message = 'a 1536×1536 image upscaled 4× would be 6144×6144; the most is 4096 per side';
    await expectRefusedUnchanged(
      app,
      user,
      () => app.callerFor(user).generation.upscale({ imageId: source.id, scale: 4 }),
      {
        code: 'BAD_REQUEST',
        message,
      },
    );
    await expect(app.callerFor(user).credits.estimateUpscale({ imageId: source.id, scale: 4 })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
      message: expect.stringContaining(message),
    });
    await expectRefusedUnchanged(
      app,
      user,
      () => app.callerFor(user).generation.upscale({ imageId: source.id, scale: 3 as never }),
      { code: 'BAD_REQUEST', message: 'scale must be 2 or 4' },
    );
    const uploadId = await checkedUpload(app, user, 64, 64);
    await expectRefusedUnchanged(
      app,
      user,
      () =>
        app
          .callerFor(user)
          .generation.create({ ...smallParams({ width: 2048, height: 2048 }), initImage: { uploadId } }),
      { code: 'FORBIDDEN', message: 'larger than the Free plan allows' },
    );
  });
});
