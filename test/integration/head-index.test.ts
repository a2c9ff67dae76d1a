/**
 * The head a node persists comes from the MP4 index: for a moov-at-end file
 * it is slice 0, the slices of the first seconds and the slices holding the
 * movie box at the end, read with one request; a second node then plays those
 * bytes from the store with no origin traffic.
 */
import { readFileSync } from 'node:fs';
import test from 'ava';
import { headRanges, locateMoov, slicesOf } from '../../src/origin/mp4.js';
import { sha256, startHarness, type Harness } from '../helpers/harness.js';

const SLICE = 64 * 1024;

let h: Harness;
test.before(async () => {
  h = await startHarness();
});
test.after.always(() => h?.close());

/** The slices the index names, computed from the whole file. */
function expectedHead(file: Buffer, seconds: number): number[] {
  const location = locateMoov(file, 0, file.length);
  if (location.kind !== 'found') throw new Error('fixture without moov');
  return [...new Set([0, ...slicesOf(headRanges(location.box, location.offset, seconds, file.length), SLICE)])].sort((a, b) => a - b);
}

// vbr.mp4: 8 s take fewer bytes than 8/12 of the file, its first 6 s being still.
for (const [name, seconds, tail] of [['moov-at-end.mp4', 2, true], ['vbr.mp4', 8, false]] as const) {
  test(`${name}, ${seconds} s: the index head is persisted and a second node plays it from the store alone`, async (t) => {
    const file = readFileSync(new URL(`../fixtures/${name}`, import.meta.url));
    const env = { SLICE_BYTES: String(SLICE), HEAD_SECONDS: String(seconds) };
    const first = await h.node(env);
    const id = h.video(file, { reportDuration: 12 });
    const video = first.service.cache.video(id as never);
    await first.service.cache.prefetch(video);
    await first.service.cache.idle();
    const head = expectedHead(file, seconds);
    const lastSlice = Math.ceil(file.length / SLICE) - 1;
    t.is(head.includes(lastSlice), tail, tail ? 'the movie box at the end is part of the head' : 'faststart: nothing from the end');
    const estimate = Math.ceil((file.length * seconds) / 12 / SLICE);
    t.log(`${name}: index head ${JSON.stringify(head)}; the bitrate estimate would persist ${estimate} slice(s) from 0`);
    const manifest = (await first.service.store.getManifest(video, SLICE))!;
    t.deepEqual(manifest.head, { method: 'index', slices: head });
    t.deepEqual(manifest.persisted, head);
    const fetched = h.origin.statsFor(id);
    t.is(fetched.mediaBytes, head.reduce((sum, index) => sum + Math.min(SLICE, file.length - index * SLICE), 0), 'the origin sent the head slices once, and no more');

    const second = await h.node(env);
    for (const index of head) {
      const start = index * SLICE;
      const end = Math.min(file.length, start + SLICE) - 1;
      const reply = await second.get(`/proxy/${id}`, { Range: `bytes=${start}-${end}` });
      t.is(reply.status, 206);
      t.is(reply.headers['x-cache-status'], h.store.hit, `slice ${index}`);
      t.is(reply.sha256, sha256(file.subarray(start, end + 1)), `slice ${index}`);
    }
    t.is(h.origin.statsFor(id).mediaBytes, fetched.mediaBytes, 'the second node used no origin bytes');
  });
}
