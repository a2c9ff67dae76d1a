import test from 'ava';
import { S3Store, s3SettingsFrom } from '../../src/cache/s3-store.js';
import { StoreTier } from '../../src/cache/store-tier.js';
import { loadConfig } from '../../src/config.js';
import { createMetrics } from '../../src/metrics.js';
import { prune } from '../../src/ops/prune.js';
import { forEachLimit } from '../../src/ops/scan.js';
import { countingStore } from '../helpers/counting-store.js';
import { chooseTestS3, startTestS3, type TestS3 } from '../helpers/s3.js';
import { objectsOf, type Seed } from '../helpers/synthetic-videos.js';

const s3Choice = await chooseTestS3();
const noS3 = s3Choice.available ? undefined : s3Choice.reason;
if (noS3) process.stderr.write(`prune-requests: skipped, no S3 (${noS3})\n`);

let s3: TestS3 | undefined;
test.before(async () => {
  if (!noS3) s3 = await startTestS3();
});
test.after.always(() => s3?.stop());

const ID_CHARACTERS = '-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz';
/** Ids whose first characters cover every listing shard. */
const idOf = (batch: string, i: number) => `${ID_CHARACTERS[i % ID_CHARACTERS.length]}${batch}${String(i).padStart(9, '0')}`;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

(noS3 ? test.skip : test)('prune on a real S3 makes LIST and DeleteObjects requests only: no GET per video, more than a page listed in shards', async (t) => {
  const env = await s3!.newBucket();
  // Seeding 1,100 objects while other test files load the same S3: generous deadlines (they are tested in test/faults, not here).
  const { store, counts } = countingStore(new S3Store(s3SettingsFrom(loadConfig({ ...env, S3_FIRST_BYTE_TIMEOUT: '30s', S3_IDLE_TIMEOUT: '30s' }))));
  const tier = new StoreTier(store, { prefix: '', metrics: createMetrics() });
  t.teardown(() => store.close());
  const putAll = (objects: Seed[]) => forEachLimit(objects, 16, async ({ key, body }) => void (await store.put(key, Buffer.from(body))));

  // S3 sets LastModified itself (to the second): old videos, a pause, then new ones and re-read old ones.
  const old = Array.from({ length: 64 }, (_, i) => ({ id: idOf('o', i), age: 0, manifest: true, slices: 8 }));
  const fresh = Array.from({ length: 48 }, (_, i) => ({ id: idOf('n', i), age: 0, manifest: true, slices: 8 }));
  const reread = old.filter((_, i) => i % 8 === 0);
  const foreign = [{ key: 'videos/.keep', body: 'not a video' }, { key: 'videos/~notes', body: 'not a video' }, { key: 'videos/README.txt', body: 'not a video' }];
  await putAll([...old.flatMap((video) => objectsOf(video, Date.now())), ...foreign]);
  const oldWritten = Date.now();
  await pause(2500);
  const freshObjects = fresh.flatMap((video) => objectsOf(video, Date.now()));
  await putAll(freshObjects);
  for (const video of reread) await tier.touch({ id: video.id as never, format: '18' });
  const total = old.length * 10 + freshObjects.length + foreign.length;
  t.true(total > 1000, 'more than one listing page');

  const expired = old.filter((video) => !reread.includes(video)).map((video) => video.id).sort();
  const options = { maxBytes: 0, concurrency: 8, orphanGraceMs: 3_600_000 };
  counts.clear();
  const plan = await prune(tier, { ...options, dryRun: true, ttlMs: Date.now() - (oldWritten + 1200) });
  t.deepEqual(plan.videos.map((video) => video.id).sort(), expired, 'the videos last read before the cutoff, by their access objects as listed');
  t.is(plan.scanned.objects, total, 'every object listed once, foreign keys included');
  const listed = counts.get('list') ?? 0;
  t.deepEqual(Object.fromEntries(counts), { list: listed }, 'a dry run only lists');
  // The first page, then at most the 70 shards (those it did not cover), each a page here: fewer than one per video.
  t.true(listed >= 2 && listed <= 71, `${listed} LIST requests`);

  counts.clear();
  const summary = await prune(tier, { ...options, dryRun: false, ttlMs: Date.now() - (oldWritten + 1200) });
  t.deepEqual(summary.failures, []);
  t.is(summary.deleted.videos, expired.length);
  t.is(summary.deleted.objects, expired.length * 10);
  t.deepEqual(Object.fromEntries(counts), { list: listed, delete: 2 }, 'then one DeleteObjects batch of manifests and one of the rest');

  const left = new Set<string>();
  for await (const page of tier.list('')) for (const object of page) left.add(object.key);
  t.is(left.size, total - expired.length * 10);
  for (const { key } of foreign) t.true(left.has(key), `${key} kept`);
  t.false([...left].some((key) => expired.includes(key.split('/')[1]!)), 'no object of an expired video left');
  t.log(`${total} objects: ${listed} LIST requests, 0 GET; ${summary.ms} ms`);
});
