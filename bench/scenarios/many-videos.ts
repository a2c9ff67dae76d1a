/**
 * Scenario 8: a working set twice the memory budget, every slice persisted
 * (PERSIST=full), clients picking videos uniformly at random. An LRU should
 * then serve about half the bytes from memory and S3 the rest, never the origin.
 */
import { fmt, mb, type Scenario } from '../context.js';
import { runLoad, type LoadResult } from '../load.js';
import { median } from '../stats.js';
import type { VideoId } from '../../src/origin/video-id.js';
import { newVideoId, VIDEO_KINDS } from '../videos.js';
import { scrape, servedByTier, type Tier } from './metrics.js';
import { waitForPersisted } from './persisted.js';
import { warm } from './warm.js';

export function manyVideosScenario(budget: number): Scenario {
  const size = VIDEO_KINDS.short.size;
  const ids = Array.from({ length: Math.ceil((2 * budget) / size) }, () => newVideoId('many'));
  const scenario: Scenario = {
    id: '8',
    title: `Many videos: ${ids.length} videos (${mb(ids.length * size)}) through a ${mb(budget)} memory budget, concurrency 16`,
    videos: ids.map((id) => ({ id, kind: 'short' as const })),
    async run(bench) {
      const system = await bench.startTubecache('tubecache-many', { MEMORY_CACHE_BYTES: String(budget), PERSIST: 'full' });
      try {
        await warm(system, ids);
        for (const id of ids) await waitForPersisted(bench, { id: id as VideoId, ...bench.format }, Math.ceil(size / bench.config.SLICE_BYTES));

        const list: { load: LoadResult; served: Record<Tier, number>; share: Record<Tier, number> }[] = [];
        for (let run = 0; run < bench.options.runs; run++) {
          const before = await scrape(system.url);
          const load = await runLoad({ url: system.url, connections: 16, durationMs: bench.options.durationMs, next: () => ({ path: `/proxy/${ids[Math.floor(Math.random() * ids.length)]}` }) });
          const served = servedByTier(before, await scrape(system.url));
          const total = served.memory + served.s3 + served.origin;
          const share = { memory: served.memory / total, s3: served.s3 / total, origin: served.origin / total };
          bench.log(`  ${fmt(load.requestsPerSecond)} req/s, ${fmt(load.bytesPerSecond / 1e6)} MB/s; bytes from memory ${fmt(share.memory * 100)}%, S3 ${fmt(share.s3 * 100)}%, origin ${fmt(share.origin * 100)}%`);
          list.push({ load, served, share });
        }
        const med = (pick: (run: (typeof list)[number]) => number) => median(list.map(pick));
        const memoryShare = med((run) => run.share.memory);
        const originShare = Math.max(...list.map((run) => run.share.origin));
        // What an LRU holds of a working set read uniformly at random: its share of it.
        const ideal = budget / (ids.length * size);
        return {
          id: scenario.id,
          title: scenario.title,
          target: `S3 serves what memory does not (origin 0%); memory at least half of budget ÷ working set (${fmt(ideal * 100)}%)`,
          rows: [
            { metric: 'req/s', values: { tubecache: fmt(med((run) => run.load.requestsPerSecond)) } },
            { metric: 'MB/s', values: { tubecache: fmt(med((run) => run.load.bytesPerSecond / 1e6)) } },
            { metric: 'bytes from memory %', values: { tubecache: fmt(memoryShare * 100) } },
            { metric: 'bytes from S3 %', values: { tubecache: fmt(med((run) => run.share.s3) * 100) } },
            { metric: 'bytes from origin %', values: { tubecache: fmt(med((run) => run.share.origin) * 100) } },
          ],
          verdict: { met: memoryShare >= ideal / 2 && originShare < 0.001, measured: `${fmt(memoryShare * 100)}% memory, ${fmt(originShare * 100)}% origin` },
          notes: [`tubecache only: the anchors have no second tier; whole-video requests, uniform over the videos; PERSIST=full; medians of ${list.length} runs. Readers that join a slice while S3 still streams it count as S3 bytes`],
          raw: list,
        };
      } finally {
        await system.stop();
      }
    },
  };
  return scenario;
}
