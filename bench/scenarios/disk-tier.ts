/**
 * Scenario 12: a working set ten times the memory budget, every slice in S3
 * (PERSIST=full), clients picking videos uniformly at random; the same load on
 * a node with a disk tier (DISK_CACHE_DIR, its budget above the working set)
 * and on one without. Reported: bytes by tier and S3 GETs per GB served; then
 * the node with the disk tier restarted with S3 frozen (disk-frozen.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { VideoId } from '../../src/origin/video-id.js';
import { alternate, fmt, mb, MiB, type Scenario } from '../context.js';
import { runLoad } from '../load.js';
import { median } from '../stats.js';
import type { System } from '../systems/process.js';
import { newVideoId, VIDEO_KINDS } from '../videos.js';
import { frozenRestart, RANGE_SAMPLES, type FrozenTimes } from './disk-frozen.js';
import { scrape } from './metrics.js';
import { waitForPersisted } from './persisted.js';
import { warm } from './warm.js';

const TIERS = ['memory', 'disk', 's3', 'origin'] as const;
type Tier = (typeof TIERS)[number];
const WARM_PASSES = 12;
const DROPPED = 'tubecache_disk_cache_writes_dropped_total';
const PASSED_THROUGH = 'tubecache_slices_passed_through_total';
const ENTRIES = 'tubecache_disk_cache_entries';
const CONNECTIONS = 16;

interface Run {
  bytes: Record<Tier, number>;
  /** GetObject requests to S3 (slices and manifests). */
  s3Gets: number;
  requestsPerSecond: number;
  errors: number;
}

export function diskTierScenario(memoryBudget: number | undefined): Scenario {
  if (!memoryBudget) throw new Error('BENCH_DISK_MEMORY must be a size such as 32MiB');
  const size = VIDEO_KINDS.short.size;
  const ids = Array.from({ length: Math.ceil((10 * memoryBudget) / size) }, () => newVideoId('disk'));
  const workingSet = ids.length * size;
  const diskBudget = 2 ** Math.ceil(Math.log2(2 * workingSet));
  const scenario: Scenario = {
    id: '12',
    title: `Disk tier: ${ids.length} videos (${mb(workingSet)}, 10× the ${mb(memoryBudget)} memory budget), every slice in S3, with DISK_CACHE_BYTES=${diskBudget / MiB}MiB and without a disk tier`,
    videos: ids.map((id) => ({ id, kind: 'short' as const })),
    async run(bench) {
      const base = { MEMORY_CACHE_BYTES: String(memoryBudget), PERSIST: 'full' };
      if (!bench.tubecacheEnv.S3_ENDPOINT) {
        return { id: scenario.id, title: scenario.title, target: 'needs S3', rows: [], verdict: { met: undefined, measured: 'not run: the disk tier needs S3_ENDPOINT' }, notes: [], raw: {} };
      }
      const dir = mkdtempSync(join(tmpdir(), 'tubecache-bench-disk-tier-'));
      const started: System[] = [];
      try {
        const plain = await bench.startTubecache('tubecache-no-disk', base);
        started.push(plain);
        // From the origin into S3, every slice, through the node without a disk tier.
        await warm(plain, ids);
        for (const id of ids) await waitForPersisted(bench, { id: id as VideoId, ...bench.format }, Math.ceil(size / bench.config.SLICE_BYTES));
        const diskEnv = { ...base, DISK_CACHE_BYTES: String(diskBudget) };
        const disk = await bench.startTubecache('tubecache-disk', { ...diskEnv, DISK_CACHE_DIR: dir });
        started.push(disk);
        // From S3 onto its disk; again until it holds every slice and manifest, so the runs start from a full disk tier.
        // A pass misses slices whose writes were dropped (queue full) and slices passed through (no budget room: not kept, not written).
        const files = ids.length * (Math.ceil(size / bench.config.SLICE_BYTES) + 1);
        let warmed = new Map<string, number>();
        let warmPasses = 0;
        for (let pass = 1; pass <= WARM_PASSES; pass++) {
          const [dropped, passed, held] = [warmed.get(DROPPED) ?? 0, warmed.get(PASSED_THROUGH) ?? 0, warmed.get(ENTRIES) ?? 0];
          await warm(disk, ids);
          warmPasses = pass;
          warmed = await settleDisk(disk);
          bench.log(
            `  disk tier after warming pass ${pass}: ${mb(warmed.get('tubecache_disk_cache_bytes') ?? 0)} in ${warmed.get(ENTRIES)} of ${files} files; ${(warmed.get(DROPPED) ?? 0) - dropped} writes dropped, ${(warmed.get(PASSED_THROUGH) ?? 0) - passed} slices passed through`,
          );
          // Full, or a pass that missed nothing yet added no file: what is still absent is never written by reading again.
          const missed = (warmed.get(DROPPED) ?? 0) - dropped + (warmed.get(PASSED_THROUGH) ?? 0) - passed;
          if ((warmed.get(ENTRIES) ?? 0) >= files || (missed === 0 && warmed.get(ENTRIES) === held)) break;
        }

        const runs = await alternate([disk, plain], bench.options.runs, async (system) => {
          const before = await scrape(system.url);
          const load = await runLoad({ url: system.url, connections: CONNECTIONS, durationMs: bench.options.durationMs, next: () => ({ path: `/proxy/${ids[Math.floor(Math.random() * ids.length)]}` }) });
          const after = await scrape(system.url);
          const run = measure(before, after, load);
          bench.log(`  ${system === disk ? 'with' : 'without'} disk tier: ${fmt(run.requestsPerSecond)} req/s; ${TIERS.map((tier) => `${tier} ${fmt(share(run, tier) * 100)}%`).join(', ')}; ${fmt(getsPerGB(run))} S3 GETs/GB`);
          return run;
        });
        const withDisk = runs.get(disk)!;
        const without = runs.get(plain)!;
        const med = (list: Run[], pick: (run: Run) => number) => fmt(median(list.map(pick)));
        const row = (metric: string, pick: (run: Run) => number) => ({ metric, values: { tubecache: med(withDisk, pick), baseline: med(without, pick) } });
        const gets = { with: median(withDisk.map(getsPerGB)), without: median(without.map(getsPerGB)) };
        const originShare = Math.max(...[...withDisk, ...without].map((run) => share(run, 'origin')));
        const end = await scrape(disk.url);
        started.splice(started.indexOf(disk), 1);
        await disk.stop();
        const frozen = await frozenRestart(bench, dir, diskEnv, ids);
        const { connect, firstByte, idle } = frozen.deadlinesMs;
        const frozenMet = frozen.notFromDisk.length === 0 && Math.max(frozen.ranges.bodyMs.max, frozen.whole.ttfbMs.max) < Math.min(connect, firstByte) && !frozen.s3Requests.GET;
        const frozenRow = (metric: string, pick: (times: FrozenTimes) => string) => ({ metric: `S3 frozen, restarted: ${metric}`, values: { tubecache: `${pick(frozen.ranges)} (ranges), ${pick(frozen.whole)} (whole)` } });
        const p50p95 = (q: { p50: number; p95: number }) => `${fmt(q.p50)} / ${fmt(q.p95)}`;
        return {
          id: scenario.id,
          title: scenario.title,
          target: 'with the disk tier: S3 GETs per GB served ≤ 1/10 of without, origin 0%; restarted with S3 frozen: disk-held reads exact, HIT-DISK, no S3 GET, every first byte (and whole range) sooner than the S3 deadlines',
          baseline: 'the same load on a node without a disk tier (same memory budget, same S3)',
          rows: [
            row('req/s', (run) => run.requestsPerSecond),
            ...TIERS.map((tier) => row(`bytes from ${tier} %`, (run) => share(run, tier) * 100)),
            ...TIERS.map((tier) => row(`GB from ${tier}`, (run) => run.bytes[tier] / 1e9)),
            row('S3 GETs per GB served', getsPerGB),
            frozenRow('time to first byte p50 / p95, ms', (times) => p50p95(times.ttfbMs)),
            frozenRow('whole body p50 / p95, ms', (times) => p50p95(times.bodyMs)),
            frozenRow('HIT-DISK replies', (times) => fmt(times.n)),
            frozenRow('slowest first byte, ms', (times) => fmt(times.ttfbMs.max)),
            ...frozen.notFromDisk.map(({ status, n, ttfbMs }) => ({ metric: `S3 frozen, restarted: ${status} replies, first byte p50 / max, ms`, values: { tubecache: `${n}: ${fmt(ttfbMs.p50)} / ${fmt(ttfbMs.max)}` } })),
            { metric: 'S3 deadlines it did not wait on (connect / first byte / idle), ms', values: { tubecache: `${fmt(connect)} / ${fmt(firstByte)} / ${fmt(idle)}` } },
          ],
          verdict: {
            met: gets.with <= gets.without / 10 && originShare < 0.001 && frozenMet,
            measured: `${fmt(gets.with)} vs ${fmt(gets.without)} S3 GETs/GB; origin at most ${fmt(originShare * 100)}%; S3 frozen: first byte p95 ${fmt(frozen.ranges.ttfbMs.p95)} ms (ranges), ${fmt(frozen.whole.ttfbMs.p95)} ms (whole videos) against a ${fmt(firstByte)} ms S3 first-byte deadline`,
          },
          notes: [
            `tubecache only (nginx and Varnish have no S3 tier here); ${CONNECTIONS} connections, whole-video requests uniform over the videos; medians of ${withDisk.length} runs each, alternating; the disk tier in ${tmpdir()}`,
            `warming (reading every video through the node with a disk tier, until the disk held all ${files} files or a pass added none) took ${warmPasses} pass(es): ${warmed.get(DROPPED) ?? 0} disk writes dropped (queue full) and ${warmed.get(PASSED_THROUGH) ?? 0} slices passed through (no room in MEMORY_CACHE_BYTES: not kept, so not written to the disk tier) in all`,
            `disk tier at the end: ${mb(end.get('tubecache_disk_cache_bytes') ?? 0)} in ${end.get('tubecache_disk_cache_entries') ?? 0} files, ${end.get('tubecache_disk_cache_evictions_total') ?? 0} evictions, ${end.get('tubecache_disk_cache_writes_dropped_total') ?? 0} writes dropped (queue full)`,
            `S3 frozen: the node with the disk tier stopped and started again on the same DISK_CACHE_DIR, its S3_ENDPOINT a fault proxy that accepts connections and passes nothing (frozen before the start; start-up, which asks S3 for the bucket and then serves without it, took ${fmt(frozen.startupMs)} ms); the disk held the manifest of ${frozen.manifestsOnDisk} of the ${frozen.videos} videos; then one request at a time on a fresh connection: ${RANGE_SAMPLES} ranges of half a slice, each in a slice not read before, then the ${frozen.videos} videos whole; every reply 200/206 and sha256-exact, the timings above are those answered HIT-DISK; bytes served ${TIERS.map((tier) => `${tier} ${mb(frozen.bytes[tier])}`).join(', ')}; requests sent to S3 meanwhile (none answered): ${Object.entries(frozen.s3Requests).map(([method, n]) => `${n} ${method}`).join(', ') || 'none'}`,
          ],
          raw: { memoryBudget, diskBudget, videos: ids.length, workingSet, withDisk, without, frozen },
        };
      } finally {
        for (const system of started) await system.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
  return scenario;
}

/** Waits until the disk tier's write queue is empty and its byte count stops moving. */
async function settleDisk(system: System): Promise<Map<string, number>> {
  let last = -1;
  for (;;) {
    const now = await scrape(system.url);
    const bytes = now.get('tubecache_disk_cache_bytes') ?? 0;
    if ((now.get('tubecache_disk_cache_queue_length') ?? 0) === 0 && bytes === last) return now;
    last = bytes;
    await sleep(500);
  }
}

function measure(before: Map<string, number>, after: Map<string, number>, load: Awaited<ReturnType<typeof runLoad>>): Run {
  const delta = (match: (key: string) => boolean) => [...after].filter(([key]) => match(key)).reduce((sum, [key, value]) => sum + value - (before.get(key) ?? 0), 0);
  const bytes = Object.fromEntries(TIERS.map((tier) => [tier, delta((key) => key.startsWith('tubecache_served_bytes_total{') && key.includes(`tier="${tier}"`))])) as Record<Tier, number>;
  const s3Gets = delta((key) => key.startsWith('tubecache_store_operations_total{store="s3",operation="get'));
  return { bytes, s3Gets, requestsPerSecond: load.requestsPerSecond, errors: load.errors };
}

const total = (run: Run) => TIERS.reduce((sum, tier) => sum + run.bytes[tier], 0);
const share = (run: Run, tier: Tier) => run.bytes[tier] / total(run);
const getsPerGB = (run: Run) => run.s3Gets / (total(run) / 1e9);
