import test from 'ava';
import { eventually, fixture, fixtureSha, newVideoId, sha256, startHarness, type Harness } from '../helpers/harness.js';

let h: Harness;
test.before(async () => {
  h = await startHarness();
});
test.after.always(() => h?.close());

const SLICE = 256 * 1024;

test('a cold video is a MISS with exact bytes, then a HIT with no origin traffic', async (t) => {
  const node = await h.node();
  const id = h.video();
  const miss = await node.get(`/proxy/${id}`);
  t.is(miss.status, 200);
  t.is(miss.headers['x-cache-status'], 'MISS');
  t.is(miss.sha256, fixtureSha);
  t.is(miss.headers['content-length'], String(fixture.length));
  t.is(miss.headers['content-type'], 'video/mp4');
  t.is(miss.headers['accept-ranges'], 'bytes');
  t.regex(String(miss.headers.etag), /^"[\w-]+"$/);
  t.is(h.origin.statsFor(id).mediaBytes, fixture.length, 'the origin sent every byte exactly once');
  t.is(h.origin.statsFor(id).resolves, 1);

  const hit = await node.get(`/proxy/${id}`);
  t.is(hit.headers['x-cache-status'], 'HIT');
  t.is(hit.sha256, fixtureSha);
  t.is(hit.headers.etag, miss.headers.etag);
  t.is(h.origin.statsFor(id).mediaBytes, fixture.length, 'no origin bytes for the hit');
  t.is(h.origin.statsFor(id).resolves, 1);
});

test('ranges: first byte, last byte, suffix, open-ended, across slices, whole, multi, 416', async (t) => {
  const node = await h.node();
  const id = h.video();
  const size = fixture.length;
  const cases: [string, number, number][] = [
    ['bytes=0-0', 0, 0],
    [`bytes=${size - 1}-${size - 1}`, size - 1, size - 1],
    ['bytes=-1000', size - 1000, size - 1],
    [`bytes=${SLICE * 3 + 7}-`, SLICE * 3 + 7, size - 1],
    [`bytes=${SLICE - 10}-${SLICE * 2 + 10}`, SLICE - 10, SLICE * 2 + 10],
    [`bytes=0-${size + 5000}`, 0, size - 1],
  ];
  for (const [range, start, end] of cases) {
    const reply = await node.get(`/proxy/${id}`, { Range: range });
    t.is(reply.status, 206, range);
    t.is(reply.headers['content-range'], `bytes ${start}-${end}/${size}`, range);
    t.is(reply.headers['content-length'], String(end - start + 1), range);
    t.is(reply.sha256, sha256(fixture.subarray(start, end + 1)), range);
  }
  const multi = await node.get(`/proxy/${id}`, { Range: 'bytes=0-10,20-30' });
  t.is(multi.status, 200, 'several ranges get the whole body');
  t.is(multi.sha256, fixtureSha);

  for (const range of [`bytes=${size}-`, 'bytes=5-2', 'bytes=nonsense']) {
    const bad = await node.get(`/proxy/${id}`, { Range: range });
    t.is(bad.status, 416, range);
    t.is(bad.headers['content-range'], `bytes */${size}`, range);
  }
});

test('If-Range with another ETag gets the whole body; If-None-Match gets 304', async (t) => {
  const node = await h.node();
  const id = h.video();
  const first = await node.get(`/proxy/${id}`, { Range: 'bytes=0-99' });
  const etag = String(first.headers.etag);
  const stale = await node.get(`/proxy/${id}`, { Range: 'bytes=0-99', 'If-Range': '"another"' });
  t.is(stale.status, 200);
  t.is(stale.sha256, fixtureSha);
  const fresh = await node.get(`/proxy/${id}`, { Range: 'bytes=0-99', 'If-Range': etag });
  t.is(fresh.status, 206);
  t.is(fresh.sha256, sha256(fixture.subarray(0, 100)));
  const notModified = await node.get(`/proxy/${id}`, { 'If-None-Match': etag });
  t.is(notModified.status, 304);
  t.is(notModified.body.length, 0);
});

test('HEAD answers the headers of GET without a body', async (t) => {
  const node = await h.node();
  const id = h.video();
  const head = await node.head(`/proxy/${id}`);
  t.is(head.status, 200);
  t.is(head.headers['content-length'], String(fixture.length));
  t.is(head.body.length, 0);
  const ranged = await node.head(`/proxy/${id}`, { Range: 'bytes=100-199' });
  t.is(ranged.status, 206);
  t.is(ranged.headers['content-range'], `bytes 100-199/${fixture.length}`);
  const get = await node.get(`/proxy/${id}`);
  t.is(get.sha256, fixtureSha);
  t.is(get.headers.etag, head.headers.etag);
});

test('100 clients asking for one cold video at once cause one yt-dlp run and one fetch of each byte', async (t) => {
  const node = await h.node();
  const id = h.video();
  h.origin.setThrottle(id, 4 * 2 ** 20);
  const replies = await Promise.all(Array.from({ length: 100 }, () => node.get(`/proxy/${id}`)));
  for (const reply of replies) {
    t.is(reply.status, 200);
    t.is(reply.sha256, fixtureSha);
  }
  const stats = h.origin.statsFor(id);
  t.is(stats.resolves, 1, 'one yt-dlp run');
  t.is(stats.mediaBytes, fixture.length, 'origin bytes = size');
  t.is(stats.mediaRequests, Math.ceil(fixture.length / SLICE), 'one request per slice');
  t.true(replies.filter((reply) => reply.headers['x-cache-status'] === 'MISS').length >= 1);
  const joins = await node.service.metrics.flightJoins.get();
  t.true(joins.values[0]!.value >= 99, 'the others joined fetches in flight');
});

test('prefetch answers 202 at once and warms the head into memory and the store', async (t) => {
  const node = await h.node();
  const id = h.video(fixture, { reportDuration: 30 });
  const accepted = await node.post(`/prefetch/${id}`);
  t.is(accepted.status, 202);
  t.deepEqual(JSON.parse(accepted.body.toString()), { id, format: 'video', status: 'accepted' });
  const video = node.service.cache.video(id as never);
  let persisted = 0;
  // Generous: uploads are background work, slow on a loaded machine.
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const manifest = await node.service.store.getManifest(video, SLICE);
    persisted = manifest?.persisted.length ?? 0;
    if (manifest?.head && persisted === manifest.head.slices.length) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  // 10 of 30 seconds: by the MP4 index, 3 slices of 256 KiB, as many as a third of the bytes.
  t.is(persisted, Math.ceil(fixture.length / 3 / SLICE));
  const before = h.origin.statsFor(id).mediaBytes;
  t.is(before, persisted * SLICE, 'prefetch fetched the head and no more');
  const head = await node.get(`/proxy/${id}`, { Range: `bytes=0-${persisted * SLICE - 1}` });
  t.is(head.headers['x-cache-status'], 'HIT');
  t.is(head.sha256, sha256(fixture.subarray(0, persisted * SLICE)));
  t.is(h.origin.statsFor(id).mediaBytes, before);
  t.is(h.origin.statsFor(id).resolves, 1, 'prefetch and GET shared one resolution');
});

test('invalid ids are a 400 before anything runs', async (t) => {
  const node = await h.node();
  const bad = ['short', 'waytoolongvideoid', 'abc%20defghi', '--version', '..%2F..%2Fetc%2Fpass'];
  for (const id of bad) {
    const reply = await node.get(`/proxy/${id}`);
    t.is(reply.status, 400, id);
    // A %-escape makes the path non-canonical: refused before routing (test/security/paths.test.ts).
    t.is(JSON.parse(reply.body.toString()).error.code, id.includes('%') ? 'BAD_REQUEST' : 'INVALID_VIDEO_ID', id);
    t.is((await node.post(`/prefetch/${id}`)).status, 400, id);
  }
  t.deepEqual(h.origin.resolveCalls.filter((call) => bad.some((id) => call.url.includes(decodeURIComponent(id)))), [], 'no yt-dlp run');
});

test('an id that begins with "-" is a video, never an option: yt-dlp gets it after "--"', async (t) => {
  const node = await h.node();
  // Not from h.video(): its id may itself begin with "-" (1 in 64), and then this one would be the same id.
  const id = `-${newVideoId().slice(1)}`;
  h.origin.addVideo(id, fixture);
  const reply = await node.get(`/proxy/${id}`);
  t.is(reply.status, 200);
  t.is(reply.sha256, fixtureSha);
  const call = h.origin.resolveCalls.find((c) => c.id === id)!;
  t.deepEqual(call.argv.slice(-2), ['--', `${h.origin.url}/watch?v=${id}`]);
  t.deepEqual(call.argv.slice(0, 5), ['-J', '--no-playlist', '--no-warnings', '-f', '18/b']);
});

test('uploads beyond UPLOAD_CONCURRENCY + UPLOAD_QUEUE are dropped and counted, never delaying the response', async (t) => {
  const node = await h.node({ PERSIST: 'full', UPLOAD_CONCURRENCY: '1', UPLOAD_QUEUE: '0' });
  const id = h.video();
  const reply = await node.get(`/proxy/${id}`);
  t.is(reply.sha256, fixtureSha);
  await node.service.cache.idle();
  const dropped = (await node.service.metrics.uploadsDropped.get()).values[0]?.value ?? 0;
  const uploaded = (await node.service.metrics.uploads.get()).values.find((v) => v.labels.outcome === 'ok')?.value ?? 0;
  t.true(dropped >= 1, `dropped ${dropped}`);
  t.is(dropped + uploaded, Math.ceil(fixture.length / SLICE), 'every slice was either uploaded or counted as dropped');
});

test('a client joining a fetch gets its first byte before the slice is complete, and the next slice is already being fetched', async (t) => {
  const node = await h.node();
  const id = h.video();
  h.origin.setThrottle(id, 256 * 1024); // one slice a second
  const { request } = await import('node:http');
  const seen = await new Promise<{ originBytes: number; firstChunk: Buffer }>((resolve, reject) => {
    const req = request(`${node.url}/proxy/${id}`, { agent: false }, (res) => {
      res.once('data', (chunk: Buffer) => {
        resolve({ originBytes: h.origin.statsFor(id).mediaBytes, firstChunk: chunk });
        setTimeout(() => req.destroy(), 300);
      });
    });
    req.on('error', reject);
    req.end();
  });
  t.true(seen.originBytes < SLICE, `first byte after ${seen.originBytes} origin bytes`);
  t.is(sha256(seen.firstChunk), sha256(fixture.subarray(0, seen.firstChunk.length)));
  await eventually(() => h.origin.statsFor(id).requests.some((r) => r.range === `bytes=${SLICE}-${2 * SLICE - 1}`), 5000, 'the read-ahead request');
  t.true(h.origin.statsFor(id).mediaBytes < 2 * SLICE, 'slice 1 was asked for while slice 0 still streamed');
});

test('without a duration from yt-dlp or the MP4 header, HEAD_BYTES of the video are persisted', async (t) => {
  const node = await h.node({ HEAD_BYTES: '512KiB' });
  const { randomBytes } = await import('node:crypto');
  const bytes = randomBytes(5 * SLICE + 123);
  const id = h.video(bytes);
  t.is((await node.post(`/prefetch/${id}`)).status, 202);
  const video = node.service.cache.video(id as never);
  await eventually(async () => ((await node.service.store.getManifest(video, SLICE))?.persisted.length ?? 0) >= 3, 60_000, 'the head in the store');
  await node.service.cache.idle();
  const manifest = (await node.service.store.getManifest(video, SLICE))!;
  t.is(manifest.duration, undefined);
  // Not an MP4: HEAD_BYTES is two slices, plus one of margin.
  t.deepEqual(manifest.head, { method: 'estimate', slices: [0, 1, 2] });
  t.deepEqual(manifest.persisted, [0, 1, 2]);
  const whole = await node.get(`/proxy/${id}`);
  t.is(whole.sha256, sha256(bytes));
});
