/**
 * planHead: the slices to persist for the first HEAD_SECONDS, from the MP4
 * index (with one read of the movie box when it is not in the first slice) or,
 * when the file cannot be indexed, the bitrate estimate plus one slice.
 */
import { readFileSync } from 'node:fs';
import test from 'ava';
import { planHead, type HeadInput } from '../../src/cache/head.js';
import { headRanges, locateMoov, slicesOf } from '../../src/origin/mp4.js';

const read = (name: string) => readFileSync(new URL(`../fixtures/${name}`, import.meta.url));

/** planHead over a whole file held in memory, recording the ranges it asks for. */
function plan(file: Buffer, options: Partial<HeadInput> & { sliceBytes: number }) {
  const fetched: [number, number][] = [];
  const run = planHead({
    first: file.subarray(0, options.sliceBytes),
    size: file.length,
    duration: undefined,
    headSeconds: 5,
    headBytes: 512 * 1024,
    fetchRange: async (start, end) => {
      fetched.push([start, end]);
      return file.subarray(start, end);
    },
    ...options,
  });
  return run.then((result) => ({ ...result, fetched }));
}

test('faststart: the index from the first slice, no other read', async (t) => {
  const file = read('video.mp4');
  const result = await plan(file, { sliceBytes: 128 * 1024, duration: 30 });
  t.is(result.method, 'index');
  t.deepEqual(result.fetched, []);
  const location = locateMoov(file, 0, file.length);
  if (location.kind !== 'found') return t.fail();
  t.deepEqual(result.slices, slicesOf(headRanges(location.box, location.offset, 5, file.length), 128 * 1024));
  t.deepEqual(result.slices, [0, 1, 2]);
});

test('moov at the end: one read of the whole slices that hold it, which are part of the head', async (t) => {
  const file = read('moov-at-end.mp4');
  const sliceBytes = 16 * 1024;
  const result = await plan(file, { sliceBytes, duration: 12 });
  t.is(result.method, 'index');
  t.is(result.fetched.length, 1);
  const [[start, end]] = result.fetched as [[number, number]];
  t.is(start % sliceBytes, 0, 'from a slice boundary');
  t.is(end, file.length, 'to the end of the file');
  const lastSlice = Math.ceil(file.length / sliceBytes) - 1;
  t.true(result.slices.includes(lastSlice), 'the slices of the movie box');
  t.true(result.slices.includes(start / sliceBytes));
  const location = locateMoov(file, 0, file.length);
  if (location.kind !== 'found') return t.fail();
  t.deepEqual(result.slices, slicesOf(headRanges(location.box, location.offset, 5, file.length), sliceBytes));
  t.deepEqual(result.slices.filter((index) => index < start / sliceBytes), [0, 1, 2, 3, 4, 5], 'and the first 5 s (≈ 98 KB), from slice 0');
});

test('a movie box larger than the first slice is read whole in one request', async (t) => {
  const file = read('video.mp4');
  const result = await plan(file, { sliceBytes: 16 * 1024 });
  t.is(result.method, 'index');
  t.deepEqual(result.fetched, [[0, 48 * 1024]], 'moov (33,852 bytes from byte 32) lies in slices 0-2');
});

test('not an MP4: the estimate plus one slice, and why', async (t) => {
  const bytes = Buffer.alloc(10 * 1024 * 1024, 7);
  const withDuration = await plan(bytes, { sliceBytes: 1024 * 1024, duration: 100 });
  t.is(withDuration.method, 'estimate');
  t.deepEqual(withDuration.slices, [0, 1], '5 s of 100 s is 0.5 MiB: one slice, plus one');
  t.regex(withDuration.reason!, /not an MP4/);
  const withoutDuration = await plan(bytes, { sliceBytes: 256 * 1024 });
  t.deepEqual(withoutDuration.slices, [0, 1, 2], 'HEAD_BYTES (512 KiB) is two slices, plus one');
  const tiny = await plan(bytes.subarray(0, 1000), { sliceBytes: 1024 * 1024, duration: 100 });
  t.deepEqual(tiny.slices, [0], 'never past the last slice');
});

test('a truncated or fragmented file, or a failed read of the tail, falls back to the estimate', async (t) => {
  const file = read('moov-at-end.mp4');
  const truncated = await plan(file.subarray(0, 200_000), { sliceBytes: 16 * 1024, duration: 12, size: file.length });
  t.is(truncated.method, 'estimate');
  const failing = await planHead({
    first: file.subarray(0, 16 * 1024), size: file.length, duration: 12, sliceBytes: 16 * 1024, headSeconds: 5, headBytes: 0,
    fetchRange: () => Promise.reject(new Error('origin gone')),
  });
  t.is(failing.method, 'estimate');
  t.regex(failing.reason!, /origin gone/);
  const fragmented = Buffer.concat([file.subarray(0, 32), Buffer.from([0, 0, 0, 16]), Buffer.from('moof'), Buffer.alloc(8)]);
  const result = await plan(fragmented, { sliceBytes: 16 * 1024, duration: 12 });
  t.is(result.method, 'estimate');
  t.regex(result.reason!, /fragmented/);
});
