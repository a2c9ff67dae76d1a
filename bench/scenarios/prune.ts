/**
 * Scenario 9: prune of many synthetic videos (a manifest, an access object and
 * a slice each) next to a bare listing of the same keys, with store requests
 * counted by type. The target: prune no slower than 2× the listing, and no
 * request per video (LIST pages and DeleteObjects batches only).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskStore } from '../../src/cache/disk-store.js';
import { S3Store, s3SettingsFrom } from '../../src/cache/s3-store.js';
import { StoreTier } from '../../src/cache/store-tier.js';
import { loadConfig } from '../../src/config.js';
import { createMetrics } from '../../src/metrics.js';
import { prune, type PruneSummary } from '../../src/ops/prune.js';
import { forEachLimit } from '../../src/ops/scan.js';
import { countingStore, type RequestCounts } from '../../test/helpers/counting-store.js';
import { objectsOf } from '../../test/helpers/synthetic-videos.js';
import { fmt, type Row, type Scenario, type ScenarioReport } from '../context.js';

const ID_CHARACTERS = '-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz';
const SEED_CONCURRENCY = 32;
const PRUNE_CONCURRENCY = 16;

interface Timed {
  ms: number;
  requests: Record<string, number>;
}

export interface PruneFigures {
  videos: number;
  objects: number;
  store: string;
  seedMs: number;
  listing: Timed;
  dryRun: Timed;
  prune: Timed & { deletedVideos: number; deletedObjects: number };
}

/** Ids spread over every first character, as random YouTube ids are. */
const idOf = (i: number) => `${ID_CHARACTERS[i % ID_CHARACTERS.length]}${String(i).padStart(10, '0')}`;

async function timed<T>(counts: RequestCounts, run: () => Promise<T>): Promise<Timed & { result: T }> {
  counts.clear();
  const started = performance.now();
  const result = await run();
  return { ms: performance.now() - started, requests: Object.fromEntries(counts), result };
}

/**
 * One size on a fresh store: `env`'s S3 bucket under a new prefix, or a disk
 * store in a new directory (under /dev/shm when there is one: seeding fsyncs
 * every object, which a tmpfs makes cheap; listing reads the page cache either way).
 */
export async function measurePrune(env: Record<string, string>, videos: number, log: (message: string) => void): Promise<PruneFigures> {
  const s3 = Boolean(env.S3_ENDPOINT);
  const dir = s3 ? undefined : await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'tubecache-prune-bench-'));
  const prefix = `${env.S3_PREFIX ?? ''}prune-bench-${Date.now()}/`;
  const inner = s3 ? new S3Store(s3SettingsFrom(loadConfig(env))) : await DiskStore.open(dir!);
  const { store, counts } = countingStore(inner);
  const tier = new StoreTier(store, { prefix: s3 ? prefix : '', metrics: createMetrics() });
  try {
    const now = Date.now();
    const seeded = performance.now();
    let objects = 0;
    await forEachLimit(Array.from({ length: videos }, (_, i) => i), SEED_CONCURRENCY, async (i) => {
      for (const { key, body } of objectsOf({ id: idOf(i), age: 0, manifest: true, slices: 1 }, now, tier.keys)) {
        await store.put(key, Buffer.from(body));
        objects++;
      }
    });
    const seedMs = performance.now() - seeded;
    log(`  ${videos} videos (${objects} objects) seeded in ${fmt(seedMs / 1000)} s on ${store.location}`);

    let bytes = 0;
    const listing = await timed(counts, async () => {
      for await (const page of tier.list(tier.keys.videosRoot)) for (const object of page) bytes += object.size;
    });
    const options = { ttlMs: 7 * 24 * 3_600_000, concurrency: PRUNE_CONCURRENCY, orphanGraceMs: 3_600_000 };
    // A byte budget of 90%: the real run deletes about a tenth of the videos (least recently read first).
    const maxBytes = Math.floor(bytes * 0.9);
    const dryRun = await timed(counts, () => prune(tier, { ...options, maxBytes, dryRun: true }));
    const real = await timed(counts, () => prune(tier, { ...options, maxBytes, dryRun: false }));
    const summary: PruneSummary = real.result;
    const figures: PruneFigures = {
      videos,
      objects,
      store: s3 ? 's3' : 'disk',
      seedMs,
      listing: { ms: listing.ms, requests: listing.requests },
      dryRun: { ms: dryRun.ms, requests: dryRun.requests },
      prune: { ms: real.ms, requests: real.requests, deletedVideos: summary.deleted.videos, deletedObjects: summary.deleted.objects },
    };
    log(`  listing ${fmt(listing.ms)} ms ${JSON.stringify(listing.requests)}; prune --dry-run ${fmt(dryRun.ms)} ms ${JSON.stringify(dryRun.requests)}; prune ${fmt(real.ms)} ms ${JSON.stringify(real.requests)}`);
    return figures;
  } finally {
    if (s3) {
      // What the real run left: deleted so the bucket does not keep every bench run.
      for await (const page of tier.list(prefix)) await tier.deleteKeys(page.map((object) => object.key));
    }
    await store.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}

const requests = (counts: Record<string, number>) =>
  Object.entries(counts)
    .map(([name, count]) => `${name} ${fmt(count)}`)
    .join(', ') || 'none';

/** The table rows and verdict of a set of measurements (shared by `npm run bench` and `npm run bench:prune`). */
export function pruneReport(figures: readonly PruneFigures[]): ScenarioReport {
  const rows: Row[] = figures.flatMap((f): Row[] => [
    { metric: `${fmt(f.videos)} videos (${fmt(f.objects)} objects, ${f.store}): bare listing ms`, values: { tubecache: fmt(f.listing.ms) } },
    { metric: '  bare listing requests', values: { tubecache: requests(f.listing.requests) } },
    { metric: '  prune --dry-run ms', values: { tubecache: fmt(f.dryRun.ms) } },
    { metric: '  prune --dry-run requests', values: { tubecache: requests(f.dryRun.requests) } },
    { metric: `  prune ms (deleting ${fmt(f.prune.deletedVideos)} videos, ${fmt(f.prune.deletedObjects)} objects)`, values: { tubecache: fmt(f.prune.ms) } },
    { metric: '  prune requests', values: { tubecache: requests(f.prune.requests) } },
    { metric: '  prune --dry-run ÷ bare listing', values: { tubecache: `${fmt(f.dryRun.ms / f.listing.ms)}×` } },
  ]);
  const worst = Math.max(...figures.map((f) => f.dryRun.ms / f.listing.ms));
  const gets = figures.reduce((n, f) => n + (f.dryRun.requests.get ?? 0) + (f.prune.requests.get ?? 0) + (f.dryRun.requests.head ?? 0) + (f.prune.requests.head ?? 0), 0);
  return {
    id: '9',
    title: `Prune of ${figures.map((f) => fmt(f.videos)).join(' and ')} synthetic videos next to a bare listing of the same keys`,
    target: 'prune --dry-run ≤ 2× a bare listing of the same keys; no GET or HEAD per video',
    rows,
    verdict: { met: worst <= 2 && gets === 0, measured: `worst ${fmt(worst)}× the listing, ${gets} GET/HEAD` },
    notes: [
      `9: each video is a manifest, an access object and one slice; the bare listing is one sequential ListObjects walk; prune lists the first page, then the 70 key-range shards past it, ${PRUNE_CONCURRENCY} at once; the real prune has a byte budget of 90% of the bucket (deletes ~10%); requests are ObjectStore calls (list = one page, delete = one DeleteObjects batch of ≤1000 keys)`,
    ],
    raw: figures,
  };
}

/** BENCH_PRUNE_VIDEOS: comma-separated video counts (default 20,000 and 100,000). */
export function pruneSizes(raw: string | undefined): number[] {
  const sizes = (raw || '20000,100000').split(',').map((part) => Number(part.trim()));
  if (sizes.some((n) => !Number.isInteger(n) || n <= 0)) throw new Error(`BENCH_PRUNE_VIDEOS must be positive whole numbers separated by commas, got "${raw}"`);
  return sizes;
}

export function pruneScenario(sizes: readonly number[]): Scenario {
  const scenario: Scenario = {
    id: '9',
    title: `Prune of ${sizes.map((n) => fmt(n)).join(' and ')} synthetic videos next to a bare listing`,
    videos: [],
    async run(bench) {
      const figures: PruneFigures[] = [];
      for (const videos of sizes) figures.push(await measurePrune(bench.tubecacheEnv, videos, bench.log));
      return pruneReport(figures);
    },
  };
  return scenario;
}
