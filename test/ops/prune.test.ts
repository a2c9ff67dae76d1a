import { utimes } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { openStore } from '../../src/cache/open-store.js';
import { forEachLimit } from '../../src/ops/scan.js';
import { loadConfig } from '../../src/config.js';
import { createMetrics } from '../../src/metrics.js';
import { prune, type PruneSummary } from '../../src/ops/prune.js';
import { startTestStore } from '../helpers/harness.js';
import { objectsOf, type Seed, type Synthetic } from '../helpers/synthetic-videos.js';
import { jsonLine, runCli } from './run-cli.js';

const HOUR = 3_600_000;

/** Sets compare in insertion order; these are about membership. */
const sorted = (items: Iterable<string>) => [...items].sort();

let store: Awaited<ReturnType<typeof startTestStore>>;
test.before(async () => {
  store = await startTestStore('disk');
});
test.after.always(() => store?.close());

/** The store tubecache opens for `env`, for the length of `run`. */
async function withTier<T>(env: Record<string, string>, run: (tier: Awaited<ReturnType<typeof openStore>>) => Promise<T>): Promise<T> {
  const tier = await openStore(loadConfig(env), createMetrics());
  try {
    return await run(tier);
  } finally {
    await tier.store.close();
  }
}

/**
 * Puts the objects in the disk store of `env`. An S3 object's LastModified is
 * the server's clock; the disk store's is the file's mtime, which a test can
 * set (the file layout is DiskStore's: {DATA_DIR}/objects/{key}).
 */
const putAll = (env: Record<string, string>, objects: Seed[]) =>
  withTier(env, (tier) =>
    forEachLimit(objects, 32, async ({ key, body, modified }) => {
      await tier.store.put(key, Buffer.from(body));
      if (modified !== undefined) await utimes(join(env.DATA_DIR!, 'objects', key), modified / 1000, modified / 1000);
    }),
  );

const listKeys = (env: Record<string, string>) =>
  withTier(env, async (tier) => {
    const all = new Set<string>();
    for await (const page of tier.list('')) for (const object of page) all.add(object.key);
    return all;
  });

test('prune of 2,000 videos deletes exactly the expired ones and the orphans; --dry-run lists the same set and deletes nothing', async (t) => {
  const env = await store.fresh();
  const now = Date.now();
  const N = 2000;
  // Reads spread over a day, with no video within an hour of the 12 h TTL, so the
  // minutes between writing and pruning cannot move one across the line.
  const videos: Synthetic[] = Array.from({ length: N }, (_, i) => {
    const age = (i / N) * 22 * HOUR;
    return { id: `v${String(i).padStart(10, '0')}`, age: i % 10 === 3 ? undefined : age >= 11 * HOUR ? age + 2 * HOUR : age, manifest: true, slices: 2 };
  });
  const orphans: Synthetic[] = Array.from({ length: 20 }, (_, i) => ({ id: `o${String(i).padStart(10, '0')}`, age: 30 * HOUR, manifest: false, slices: 1 }));
  const expired = new Set(videos.filter((video) => video.age !== undefined && video.age > 12 * HOUR).map((video) => video.id));
  const doomed = new Set([...expired, ...orphans.map((orphan) => orphan.id)]);

  const objects = [...videos, ...orphans].flatMap((video) => objectsOf(video, now));
  // Not tubecache's: prune must leave them alone.
  const foreign = [{ key: 'videos/README.txt', body: 'not a video' }, { key: 'elsewhere/keep.txt', body: 'outside the videos/ prefix' }];
  await putAll(env, [...objects, ...foreign]);
  const before = await listKeys(env);
  t.is(before.size, objects.length + foreign.length);

  const args = ['prune', '--ttl', '12h', '--orphan-grace', '0s', '--json'];
  const dry = await runCli([...args, '--dry-run'], env);
  t.is(dry.exitCode, 0, dry.stderr);
  t.false(dry.stderr.includes('\r') || dry.stderr.includes('\x1b['), 'no progress bar when stderr is not a terminal');
  const plan = jsonLine<PruneSummary>(dry.stdout);
  t.true(plan.dryRun);
  t.deepEqual(sorted(plan.videos.map((video) => video.id)), sorted(doomed), 'the dry run lists exactly the expired videos and the orphans');
  t.is(plan.deleted.videos, expired.size);
  t.is(plan.deleted.orphans, orphans.length);
  t.is(plan.scanned.videos, N);
  t.deepEqual(sorted(await listKeys(env)), sorted(before), 'the dry run deleted nothing');

  const real = await runCli([...args, '--concurrency', '16'], env);
  t.is(real.exitCode, 0, real.stderr);
  const summary = jsonLine<Omit<PruneSummary, 'videos'> & { videos?: unknown }>(real.stdout);
  t.is(summary.videos, undefined, 'a real run logs counts, not the list');
  t.deepEqual(summary.failures, []);
  t.deepEqual(summary.deleted, plan.deleted, 'the real run deleted what the dry run announced');
  t.is(summary.kept.videos, N - expired.size);
  t.is(summary.deleted.objects + summary.kept.objects, before.size - 1, 'every object under videos/ is accounted for');

  const after = await listKeys(env);
  const expected = [...before].filter((key) => !doomed.has(key.split('/')[1]!));
  t.deepEqual(sorted(after), sorted(expected), 'exactly the expired videos and the orphans are gone; the rest is intact');
  t.log(`prune of ${N} videos (${before.size} objects, ${expired.size} expired + ${orphans.length} orphans): ${summary.ms} ms inside the command (store: ${store.kind})`);
});

test('--max-bytes then deletes the least recently read; orphans younger than the grace period stay; metrics count the run', async (t) => {
  const env = await store.fresh();
  const now = Date.now();
  const videos: Synthetic[] = [1, 2, 3, 4, 5, 6].map((hours) => ({ id: `m${String(hours).padStart(10, '0')}`, age: hours * HOUR, manifest: true, slices: 3 }));
  const young: Synthetic = { id: 'y0000000000', age: undefined, manifest: false, slices: 2 };
  await putAll(env, [...videos, young].flatMap((video) => objectsOf(video, now)));

  const tier = await openStore(loadConfig(env), createMetrics());
  t.teardown(() => tier.store.close());
  const bytesOf = async (id: string) => {
    let bytes = 0;
    for await (const page of tier.list(`videos/${id}/`)) for (const object of page) bytes += object.size;
    return bytes;
  };
  // Room for the three most recently read videos and the young orphan.
  const budget = (await Promise.all(['m0000000001', 'm0000000002', 'm0000000003', young.id].map(bytesOf))).reduce((a, b) => a + b, 0);

  const metrics = createMetrics();
  const options = { ttlMs: 5.5 * HOUR, maxBytes: budget, dryRun: false, concurrency: 4, orphanGraceMs: HOUR };
  const plan = await prune(tier, { ...options, dryRun: true }, { metrics });
  t.deepEqual(
    plan.videos.map(({ id, reason }) => [id, reason]).sort(),
    [['m0000000004', 'max-bytes'], ['m0000000005', 'max-bytes'], ['m0000000006', 'ttl']],
  );
  const summary = await prune(tier, options, { metrics });
  t.is(summary.deleted.expired, 1);
  t.is(summary.deleted.overBudget, 2);
  t.is(summary.deleted.orphans, 0, 'an orphan younger than the grace period may be an upload in progress');
  t.is(summary.kept.bytes, budget);
  const left = new Set([...(await listKeys(env))].map((key) => key.split('/')[1]!));
  t.deepEqual(sorted(left), sorted(['m0000000001', 'm0000000002', 'm0000000003', young.id]));

  const runs = await metrics.pruneRuns.get();
  t.deepEqual(Object.fromEntries(runs.values.map(({ labels, value }) => [labels.outcome, value])), { 'dry-run': 1, ok: 1 });
  t.is((await metrics.pruneDeleted.get()).values[0]?.value, summary.deleted.objects);
});
