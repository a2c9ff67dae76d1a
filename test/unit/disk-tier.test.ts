/**
 * The disk tier on a real directory: LRU eviction by read within DISK_CACHE_BYTES,
 * the index rebuilt from the directory on restart with the read order kept, the
 * budget never exceeded by more than one slice, and a damaged file never served.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { pino } from 'pino';
import { DiskTier } from '../../src/cache/disk-tier.js';
import { createManifest, type Manifest } from '../../src/cache/manifest.js';
import { loadConfig } from '../../src/config.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import type { VideoId } from '../../src/origin/video-id.js';
import { bytesUnder } from '../helpers/disk-usage.js';
import { sha256 } from '../helpers/harness.js';

const SLICE = 64 * 1024;
/** One slice file on disk: the store's header line, the digest header, the bytes (about 65.7 KB). */
const FILE_MAX = SLICE + 1024;

const video = (id: string): Manifest =>
  createManifest({ id: id as VideoId, format: 'video', selector: '18' }, { contentType: 'video/mp4', size: 8 * SLICE, duration: 8, lmt: '1', sliceBytes: SLICE, headSlices: 1 });
const a = video('aaaaaaaaaaa');
const b = video('bbbbbbbbbbb');
const bytesOf = (manifest: Manifest, index: number) => Buffer.alloc(SLICE, `${manifest.id}:${index}`);

const dirs: string[] = [];
test.after.always(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

async function openTier(dir: string, budget: number, metrics: Metrics = createMetrics()): Promise<DiskTier> {
  const config = loadConfig({ S3_ENDPOINT: 'http://127.0.0.1:9', DISK_CACHE_DIR: dir, DISK_CACHE_BYTES: String(budget), SLICE_BYTES: String(SLICE) });
  return (await DiskTier.open(config, metrics, pino({ level: 'silent' })))!;
}

async function newDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tubecache-disk-tier-'));
  dirs.push(dir);
  return dir;
}

/** Reads slice `index` through the tier: whether it was served, and the bytes pushed. */
async function read(tier: DiskTier, manifest: Manifest, index: number): Promise<{ ok: boolean; bytes: Buffer }> {
  const chunks: Buffer[] = [];
  const ok = await tier.fill(manifest, index, (chunk) => chunks.push(Buffer.from(chunk)), new AbortController().signal);
  return { ok, bytes: Buffer.concat(chunks) };
}

async function write(tier: DiskTier, manifest: Manifest, index: number): Promise<void> {
  tier.writeSlice(manifest, index, bytesOf(manifest, index));
  await tier.idle();
}

const held = (tier: DiskTier, manifest: Manifest, indexes: number[]) => indexes.filter((index) => tier.has(manifest, index));

test('the least recently read slice is evicted first, and the eviction is counted', async (t) => {
  const metrics = createMetrics();
  const tier = await openTier(await newDir(), 4 * FILE_MAX, metrics);
  for (const index of [0, 1, 2, 3]) await write(tier, a, index);
  t.deepEqual(held(tier, a, [0, 1, 2, 3]), [0, 1, 2, 3]);
  t.true((await read(tier, a, 0)).ok, 'slice 0 read: now the most recent');
  await write(tier, b, 0);
  t.deepEqual(held(tier, a, [0, 1, 2, 3]), [0, 2, 3], 'a/1, the least recently read, went first');
  await write(tier, b, 1);
  t.deepEqual(held(tier, a, [0, 1, 2, 3]), [0, 3], 'then a/2');
  t.is((await metrics.diskEvictions.get()).values[0]?.value, 2);
  t.true(tier.bytes <= tier.budget);
  await tier.close();
});

test('a restart rebuilds the index from the directory, with the read order kept', async (t) => {
  const dir = await newDir();
  const first = await openTier(dir, 4 * FILE_MAX);
  for (const index of [0, 1, 2]) await write(first, a, index);
  await write(first, b, 0);
  // Read order now: a/1, a/2, b/0, a/0 (a/0 written first, read last).
  t.true((await read(first, a, 1)).ok);
  t.true((await read(first, a, 2)).ok);
  t.true((await read(first, b, 0)).ok);
  t.true((await read(first, a, 0)).ok);
  const { bytes, entries } = first;
  await first.close();

  const second = await openTier(dir, 4 * FILE_MAX);
  t.is(second.entries, entries);
  t.is(second.bytes, bytes);
  t.is(second.bytes, await bytesUnder(dir), 'the index counts the bytes on disk');
  await write(second, b, 1);
  t.deepEqual(held(second, a, [0, 1, 2]), [0, 2], 'a/1, read least recently before the restart, went first (not a/0, written first)');
  await write(second, b, 2);
  t.deepEqual(held(second, a, [0, 1, 2]), [0], 'then a/2');
  t.deepEqual((await read(second, a, 0)).bytes, bytesOf(a, 0), 'bytes written before the restart read back exact');
  await second.close();

  const smaller = await openTier(dir, 2 * FILE_MAX);
  t.is(smaller.entries, 4, 'a lowered budget applies at start-up: two slices and the manifests of a and b, evicted last');
  t.deepEqual([held(smaller, a, [0]), held(smaller, b, [0, 1, 2])], [[0], [2]], 'keeping the two read or written last (b/2, then a/0)');
  await smaller.close();
});

test('the files on disk never exceed the budget by more than one slice, while writes run', async (t) => {
  const dir = await newDir();
  const budget = 5 * FILE_MAX + 12_345;
  const tier = await openTier(dir, budget);
  let most = 0;
  let writing = true;
  const watch = (async () => {
    while (writing) {
      most = Math.max(most, await bytesUnder(dir));
      await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  for (let index = 0; index < 8; index++) {
    tier.writeSlice(a, index, randomBytes(SLICE));
    tier.writeSlice(b, index, randomBytes(SLICE));
    tier.writeManifest(b);
    await tier.idle();
    most = Math.max(most, await bytesUnder(dir));
    t.true(tier.bytes <= budget, `after write ${index}: ${tier.bytes} of ${budget} bytes`);
  }
  writing = false;
  await watch;
  t.log(`most bytes seen on disk: ${most} (budget ${budget})`);
  t.true(most <= budget + SLICE, `${most} bytes at most on disk, budget ${budget}`);
  t.is(tier.bytes, await bytesUnder(dir));
  await tier.close();
});

test('a full write queue drops and counts; a slice larger than the budget is not written', async (t) => {
  const metrics = createMetrics();
  const config = loadConfig({ S3_ENDPOINT: 'http://127.0.0.1:9', DISK_CACHE_DIR: await newDir(), DISK_CACHE_BYTES: String(2 * FILE_MAX), DISK_CACHE_QUEUE: '1' });
  const tier = (await DiskTier.open(config, metrics, pino({ level: 'silent' })))!;
  tier.writeManifest(a);
  await tier.idle();
  for (const index of [0, 1, 2, 3]) tier.writeSlice(a, index, bytesOf(a, index));
  await tier.idle();
  t.is((await metrics.diskWritesDropped.get()).values[0]?.value, 2, 'one running, one queued, two dropped');
  t.is(tier.entries, 3, 'the manifest and two slices');
  tier.writeSlice(a, 4, Buffer.alloc(3 * FILE_MAX));
  await tier.idle();
  t.false(tier.has(a, 4));
  await tier.close();
});

test('a manifest write dropped by a full queue is made good with the video\'s next slice', async (t) => {
  const config = loadConfig({ S3_ENDPOINT: 'http://127.0.0.1:9', DISK_CACHE_DIR: await newDir(), DISK_CACHE_BYTES: String(16 * FILE_MAX), DISK_CACHE_QUEUE: '1', SLICE_BYTES: String(SLICE) });
  const tier = (await DiskTier.open(config, createMetrics(), pino({ level: 'silent' })))!;
  tier.writeSlice(b, 0, bytesOf(b, 0)); // b's manifest runs, its slice waits: the queue is full
  tier.writeManifest(a); // dropped
  await tier.idle();
  const request = { id: a.id, format: a.format, selector: '18' };
  t.is(await tier.getManifest(request, SLICE), undefined);
  tier.writeSlice(a, 1, bytesOf(a, 1));
  await tier.idle();
  t.is((await tier.getManifest(request, SLICE))?.etag, a.etag);
  t.true(tier.has(a, 1));
  t.deepEqual((await read(tier, a, 1)).bytes, bytesOf(a, 1));
  await tier.close();
});

test('a flipped byte in a disk file is never pushed: the read stops at the bad chunk, is counted, and the file is deleted', async (t) => {
  const dir = await newDir();
  const metrics = createMetrics();
  const tier = await openTier(dir, 4 * FILE_MAX, metrics);
  const original = randomBytes(SLICE);
  tier.writeSlice(a, 0, original);
  await tier.idle();
  const path = join(dir, 'objects', 'videos', a.id, a.format, 'slices', '0');
  const file = await readFile(path);
  file[file.length - 1000]! ^= 0x01; // in the last 64 KiB chunk (the slice is one chunk)
  await writeFile(path, file);

  const { ok, bytes } = await read(tier, a, 0);
  t.false(ok);
  t.is(bytes.length, 0, 'nothing of the damaged chunk was pushed');
  t.is((await metrics.integrityFailures.get()).values.find((v) => v.labels.store === 'disk')?.value, 1);
  t.false(tier.has(a, 0));
  await t.throwsAsync(stat(path), { code: 'ENOENT' });

  tier.writeSlice(a, 0, original);
  await tier.idle();
  const again = await read(tier, a, 0);
  t.true(again.ok);
  t.is(sha256(again.bytes), sha256(original), 'rewritten, it reads back exact');
  await tier.close();
});

test('DISK_CACHE_DIR without S3 is a start-up error naming it', (t) => {
  const error = t.throws(() => loadConfig({ S3_ENDPOINT: '', DISK_CACHE_DIR: '/tmp/x' }));
  t.regex(error.message, /DISK_CACHE_DIR/);
  t.regex(error.message, /S3_ENDPOINT/);
});

test('a slice of another version is a miss, and is dropped', async (t) => {
  const tier = await openTier(await newDir(), 4 * FILE_MAX);
  await write(tier, a, 0);
  const other = { ...a, etag: '"another-version"' };
  t.true(tier.has(other, 0), 'the index does not know versions');
  t.false((await read(tier, other, 0)).ok);
  t.false(tier.has(a, 0));
  await tier.close();
});
