/**
 * Scenario 6: many clients streaming more distinct videos than the memory
 * budget holds, origin unthrottled (the fastest inflow): the tubecache
 * process's peak resident set against MEMORY_CACHE_BYTES.
 */
import { fmt, MiB, mb, type Scenario } from '../context.js';
import { runLoad } from '../load.js';
import { memoryOf } from '../systems/process.js';
import { newVideoId } from '../videos.js';
import { scrape, servedByTier } from './metrics.js';

const BUDGET = 100 * MiB;
/** Each client reads like a player filling its buffer, so slices stay held while clients catch up. */
const STREAM_RATE = 1e6;

export function memoryBoundScenario(clients: number, videos: number): Scenario {
  const ids = Array.from({ length: videos }, () => newVideoId('mem'));
  const scenario: Scenario = {
    id: '6',
    title: `Memory bound: ${clients} clients streaming ${videos} distinct videos at ${STREAM_RATE / 1e6} MB/s each, MEMORY_CACHE_BYTES=100MiB`,
    videos: ids.map((id) => ({ id, kind: 'short' as const })),
    async run(bench) {
      const system = await bench.startTubecache('tubecache-mem', { MEMORY_CACHE_BYTES: String(BUDGET) });
      try {
        const idle = memoryOf(system.pid);
        let sampled = idle.rss;
        const poll = setInterval(() => (sampled = Math.max(sampled, memoryOf(system.pid).rss)), 100);
        // What the RSS is made of, from the process's own gauges, at the fullest moment seen.
        let makeup: Map<string, number> | undefined;
        const inspect = setInterval(async () => {
          const now = await scrape(system.url).catch(() => undefined);
          if (now && (now.get('process_resident_memory_bytes') ?? 0) > (makeup?.get('process_resident_memory_bytes') ?? 0)) makeup = now;
        }, 500);
        const before = await scrape(system.url);
        const load = await runLoad({
          url: system.url,
          connections: clients,
          durationMs: bench.options.memoryDurationMs,
          bytesPerSecond: STREAM_RATE,
          next: (connection) => ({ path: `/proxy/${ids[connection % videos]}`, headers: { Range: 'bytes=0-' } }),
        });
        clearInterval(poll);
        clearInterval(inspect);
        const after = await scrape(system.url);
        const gauge = (name: string) => makeup?.get(name) ?? Number.NaN;
        const peak = Math.max(sampled, memoryOf(system.pid).peak);
        const limit = BUDGET + 100e6;
        const served = servedByTier(before, after);
        bench.log(`  peak RSS ${mb(peak)} (idle ${mb(idle.rss)}), ${fmt(load.requestsPerSecond)} req/s, ${load.errors} errors`);
        return {
          id: scenario.id,
          title: scenario.title,
          target: `peak RSS ≤ budget + 100 MB (${mb(limit)})`,
          rows: [
            { metric: 'peak RSS MB', values: { tubecache: fmt(peak / 1e6) } },
            { metric: 'RSS before load MB', values: { tubecache: fmt(idle.rss / 1e6) } },
            { metric: 'memory tier at end MB', values: { tubecache: fmt((after.get('tubecache_memory_cache_bytes') ?? Number.NaN) / 1e6) } },
            { metric: 'at the fullest scrape: RSS / memory tier / Buffers / JS heap MB', values: { tubecache: ['process_resident_memory_bytes', 'tubecache_memory_cache_bytes', 'nodejs_external_memory_bytes', 'nodejs_heap_size_used_bytes'].map((name) => fmt(gauge(name) / 1e6)).join(' / ') } },
            { metric: 'MB/s to clients', values: { tubecache: fmt(load.bytesPerSecond / 1e6) } },
          ],
          verdict: { met: peak <= limit, measured: `${mb(peak)} peak` },
          notes: [
            `${fmt(bench.options.memoryDurationMs / 1000)} s, origin unthrottled; bytes served from memory ${mb(served.memory)}, S3 ${mb(served.s3)}, origin ${mb(served.origin)}; ${load.errors} connection errors; statuses ${JSON.stringify(load.statuses)}`,
            'tubecache only: nginx and Varnish have no equivalent budget here (nginx caches on disk, Varnish was given 2 GB)',
          ],
          raw: { idle, peak, load, served, makeup: makeup && Object.fromEntries(makeup), uploadsDropped: after.get('tubecache_uploads_dropped_total') },
        };
      } finally {
        await system.stop();
      }
    },
  };
  return scenario;
}
