import { describe, expect, it } from 'vitest';
import sharp, { type WebpOptions } from 'sharp';
import type { TestApp } from '../../test/harness.js';
import { fundedUser, smallParams } from '../../test/factories.js';
import { publishJobEvent } from '../generation/bus.js';
import { claim, followJob, jobRow, useGenerationTestApp } from '../generation/generation.test-support.js';
import { webpSize } from './image-headers.js';

let app: TestApp;
useGenerationTestApp((created) => {
  app = created;
});

const webp = (width: number, height: number, options: WebpOptions = {}) =>
  sharp({ create: { width, height, channels: 3, background: { r: 10, g: 120, b: 200 } } })
    .webp(options)
    .toBuffer();

async function runningJob() {
  const user = await fundedUser(app, 'free', 100);
  const { jobId } = await app.callerFor(user).generation.create(smallParams());
  const claimed = (await claim(app))!;
  return { user, jobId, lease: { jobId, leaseToken: claimed.lease.token } };
}

describe('webpSize', () => {
  it.each([
    ['lossy (VP8)', {}],
    ['lossless (VP8L)', { lossless: true }],
  ] as const)('reads the size of a %s WebP', async (_, options) => {
    expect(webpSize(await webp(200, 120, options))).toEqual({ width: 200, height: 120 });
  });

  it('reads the size of an extended (VP8X) WebP', async () => {
    const withAlpha = await sharp({ create: { width: 90, height: 70, channels: 4, background: '#0000' } })
      .webp()
      .toBuffer();
    expect(withAlpha.toString('latin1', 12, 16)).toBe('VP8X');
    expect(webpSize(withAlpha)).toEqual({ width: 90, height: 70 });
  });

  it('says null for anything else', async () => {
    expect(webpSize(Buffer.from('RIFF\0\0\0\0WEBPVP8 but not really a frame'))).toBeNull();
    expect(
      webpSize(
        await sharp({ create: { width: 8, height: 8, channels: 3, background: '#fff' } })
          .png()
          .toBuffer(),
      ),
    ).toBeNull();
    expect(webpSize(Buffer.alloc(0))).toBeNull();
  });
});

describe('heartbeat previews', () => {
  it('publishes the frame as a live preview event, after the progress of the same heartbeat', async () => {
    const { user, jobId, lease } = await runningJob();
    const live = followJob(app, user.id, jobId);
    await live.next('snapshot');
    const frame = await webp(256, 192);
    await app.workerCaller().heartbeat({
      ...lease,
      progress: { percent: 40, step: 8, totalSteps: 20 },
      preview: { webpBase64: frame.toString('base64'), width: 256, height: 192, step: 8 },
    });
    expect(await live.next('preview')).toEqual({
      type: 'preview',
      jobId,
      step: 8,
      width: 256,
      height: 192,
      dataUrl: `data:image/webp;base64,${frame.toString('base64')}`,
    });
    expect(live.events.map((event) => event.type)).toEqual(['snapshot', 'progress', 'preview']);
    await live.stop();
    // Nothing of it is stored.
    expect(JSON.stringify(await jobRow(app, jobId))).not.toContain(frame.toString('base64').slice(0, 40));
  });

  it('refuses a preview that is not a WebP of its declared size, and changes nothing', async () => {
    const { jobId, lease } = await runningJob();
    const before = await jobRow(app, jobId);
    const attempts: [Buffer, number, number, string][] = [
      [Buffer.from('a text file, not a picture at all'), 16, 16, 'preview.webpBase64 is not a WebP image.'],
      [
        await sharp({ create: { width: 16, height: 16, channels: 3, background: '#fff' } })
          .png()
          .toBuffer(),
        16,
        16,
        'not a WebP',
      ],
      [await webp(64, 48), 48, 64, 'The preview is 64×48, not the 48×64 declared.'],
    ];
    for (const [bytes, width, height, message] of attempts) {
      await expect(
        app.workerCaller().heartbeat({
          ...lease,
          progress: { percent: 10, step: 2, totalSteps: 20 },
          preview: { webpBase64: bytes.toString('base64'), width, height, step: 2 },
        }),
      ).rejects.toMatchObject({ code: 'BAD_REQUEST', message: expect.stringContaining(message) });
    }
    // Over the bounds of the schema: larger than 256 px, more than 48 KiB.
    await expect(
      app.workerCaller().heartbeat({
        ...lease,
        preview: { webpBase64: (await webp(300, 20)).toString('base64'), width: 300, height: 20, step: 1 },
      }),
    ).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(
      app.workerCaller().heartbeat({
        ...lease,
        preview: { webpBase64: Buffer.alloc(49 * 1024).toString('base64'), width: 16, height: 16, step: 1 },
      }),
    ).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    const after = await jobRow(app, jobId);
    expect({ progress: after.progress, lease: after.lease_expires_at, v: after.updated_at }).toEqual({
      progress: before.progress,
      lease: before.lease_expires_at,
      v: before.updated_at,
    });
  });

  it('gives a late subscriber no stale preview: older frames are dropped, and none is replayed', async () => {
    const { user, jobId, lease } = await runningJob();
    const frame = (await webp(32, 32)).toString('base64');
    const preview = { webpBase64: frame, width: 32, height: 32, step: 3 };
    await app.workerCaller().heartbeat({ ...lease, progress: { percent: 15, step: 3, totalSteps: 20 }, preview });

    const late = followJob(app, user.id, jobId);
    const snapshot = await late.next('snapshot');
    expect(snapshot).toMatchObject({ status: 'in_progress', progress: 15 });
    const version = Number(
      (
        await app.database.admin`
      select (extract(epoch from updated_at) * 1000000)::bigint::text as v from generation_jobs where id = ${jobId}`
      )[0]!.v,
    );
    const event = {
      type: 'preview' as const,
      jobId,
      step: 3,
      width: 32,
      height: 32,
      dataUrl: 'data:image/webp;base64,',
    };
    // A frame from before the snapshot (a lagging publish) is stale; one of the snapshot's own version is current.
    await publishJobEvent(app.deps, version - 1, { ...event, step: 1 });
    await publishJobEvent(app.deps, version, { ...event, step: 3 });
    await app.workerCaller().heartbeat({ ...lease, progress: { percent: 20, step: 4, totalSteps: 20 } });
    await late.next('progress');
    expect(late.events.map((e) => (e.type === 'preview' ? `preview@${e.step}` : e.type))).toEqual([
      'snapshot',
      'preview@3',
      'progress',
    ]);
    await late.stop();
  });
});
