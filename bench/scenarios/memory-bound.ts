/**
 * Scenarios 6 and 10: more slice bytes in motion than MEMORY_CACHE_BYTES, the
 * origin unthrottled (the fastest inflow). The tubecache process's peak
 * resident set against its idle RSS plus the budget, its live slice bytes
 * (tubecache_slice_bytes_live) at every scrape, and yt-dlp runs against the
 * number of distinct videos (slice churn must not evict resolutions).
 */
import { fmt, MiB, mb, type Scenario } from '../context.js';
import { runLoad } from '../load.js';
import { memoryOf } from '../systems/process.js';
import { newVideoId, VIDEO_KINDS, type VideoKind } from '../videos.js';
import { scrape, servedByTier, sum } from './metrics.js';

const BUDGET = 100 * MiB;

interface MemoryLoad {
  id: string;
  clients: number;
  videos: number;
  kind: VideoKind;
  /** Bytes per second each client reads, like a player filling its buffer: slices stay held while clients catch up. */
  rate: number;
  /** What the process may hold beyond idle + budget (the target). */
  slack: number;
  /** Clients of one video start this far apart (0: all from the start). */
  spread: number;
}

/** Scenario 6: 200 clients × 50 videos of ~6 MB at ~1 MB/s; peak RSS ≤ idle + budget + 40 MiB. */
export const memoryBoundScenario = (clients: number, videos: number): Scenario =>
  memoryLoadScenario({ id: '6', clients, videos, kind: 'short', rate: 1e6, slack: 40 * MiB, spread: 0 });

/** Scenario 10: 200 readers at 200 KB/s across 20 videos of ~40 MB, each at its own place; peak RSS ≤ idle + budget + 60 MiB. */
export const slowReadersScenario = (clients: number): Scenario =>
  memoryLoadScenario({ id: '10', clients, videos: 20, kind: 'long', rate: 200e3, slack: 60 * MiB, spread: 3_900_000 });

function memoryLoadScenario(load: MemoryLoad): Scenario {
  const ids = Array.from({ length: load.videos }, () => newVideoId(load.id === '6' ? 'mem' : 'slow'));
  const size = VIDEO_KINDS[load.kind].size;
  const title =
    load.id === '6'
      ? `Memory bound: ${load.clients} clients streaming ${load.videos} distinct videos of ${mb(size)} at ${load.rate / 1e6} MB/s each, MEMORY_CACHE_BYTES=100MiB`
      : `Slow readers: ${load.clients} readers at ${load.rate / 1e3} KB/s across ${load.videos} videos of ${mb(size)}, each reader at its own offset, MEMORY_CACHE_BYTES=100MiB`;
  const scenario: Scenario = {
    id: load.id,
    title,
    videos: ids.map((id) => ({ id, kind: load.kind })),
    async run(bench) {
      const system = await bench.startTubecache(`tubecache-${load.id === '6' ? 'mem' : 'slow'}`, { MEMORY_CACHE_BYTES: String(BUDGET) });
      try {
        const idle = memoryOf(system.pid);
        let sampled = idle.rss;
        const poll = setInterval(() => (sampled = Math.max(sampled, memoryOf(system.pid).rss)), 100);
        // What the RSS is made of, from the process's own gauges, at the fullest moment seen; and every live-bytes sample.
        let makeup: Map<string, number> | undefined;
        const live: number[] = [];
        const inspect = setInterval(async () => {
          const now = await scrape(system.url).catch(() => undefined);
          if (!now) return;
          live.push(now.get('tubecache_slice_bytes_live') ?? Number.NaN);
          if ((now.get('process_resident_memory_bytes') ?? 0) > (makeup?.get('process_resident_memory_bytes') ?? 0)) makeup = now;
        }, 250);
        const before = await scrape(system.url);
        const result = await runLoad({
          url: system.url,
          connections: load.clients,
          durationMs: bench.options.memoryDurationMs,
          bytesPerSecond: load.rate,
          next: (connection) => {
            const video = connection % load.videos;
            const start = (Math.floor(connection / load.videos) * load.spread) % size;
            return { path: `/proxy/${ids[video]}`, headers: { Range: `bytes=${start}-` } };
          },
        });
        clearInterval(poll);
        clearInterval(inspect);
        // Runs still queued at the end of the window (YTDLP_CONCURRENCY at once) are waited for: each counts.
        const misses = (metrics: Map<string, number>) => metrics.get('tubecache_resolve_cache_total{result="miss"}') ?? 0;
        let after = await scrape(system.url);
        for (let waited = 0; sum(after, 'tubecache_ytdlp_runs_total') < misses(after) && waited < 60; waited++) {
          await new Promise((resolve) => setTimeout(resolve, 1000));
          after = await scrape(system.url);
        }
        const gauge = (name: string) => makeup?.get(name) ?? Number.NaN;
        const peak = Math.max(sampled, memoryOf(system.pid).peak);
        const limit = idle.rss + BUDGET + load.slack;
        const served = servedByTier(before, after);
        const ytdlp = sum(after, 'tubecache_ytdlp_runs_total') - sum(before, 'tubecache_ytdlp_runs_total');
        const liveMax = Math.max(...live);
        const met = peak <= limit && ytdlp === load.videos && liveMax <= BUDGET;
        bench.log(`  peak RSS ${mb(peak)} (idle ${mb(idle.rss)}, limit ${mb(limit)}), live slice bytes max ${mb(liveMax)}, ${ytdlp} yt-dlp runs for ${load.videos} videos, ${load.clients} clients ${fmt(result.bytesPerSecond / 1e6)} MB/s, ${result.errors} errors`);
        return {
          id: scenario.id,
          title: scenario.title,
          target: `peak RSS ≤ idle + budget + ${load.slack / MiB} MiB; live slice bytes ≤ budget at every scrape; yt-dlp runs = ${load.videos} videos`,
          rows: [
            { metric: 'peak RSS MB', values: { tubecache: fmt(peak / 1e6) } },
            { metric: 'idle RSS MB (before load)', values: { tubecache: fmt(idle.rss / 1e6) } },
            { metric: 'budget MB (MEMORY_CACHE_BYTES)', values: { tubecache: fmt(BUDGET / 1e6) } },
            { metric: `limit MB (idle + budget + ${load.slack / MiB} MiB)`, values: { tubecache: fmt(limit / 1e6) } },
            { metric: `live slice bytes MB, max of ${live.length} scrapes`, values: { tubecache: fmt(liveMax / 1e6) } },
            { metric: 'yt-dlp runs', values: { tubecache: `${ytdlp} (${load.videos} videos)` } },
            { metric: 'videos requested in the window (resolution misses)', values: { tubecache: fmt(misses(after) - misses(before)) } },
            { metric: 'slices streamed through (no room to keep)', values: { tubecache: fmt(sum(after, 'tubecache_slices_passed_through_total') - sum(before, 'tubecache_slices_passed_through_total')) } },
            { metric: 'at the fullest scrape: RSS / live slices / memory tier / Buffers / JS heap MB', values: { tubecache: ['process_resident_memory_bytes', 'tubecache_slice_bytes_live', 'tubecache_memory_cache_bytes', 'nodejs_external_memory_bytes', 'nodejs_heap_size_used_bytes'].map((name) => fmt(gauge(name) / 1e6)).join(' / ') } },
            { metric: 'MB/s to clients', values: { tubecache: fmt(result.bytesPerSecond / 1e6) } },
          ],
          verdict: { met, measured: `${mb(peak)} peak of ${mb(limit)}, ${ytdlp} yt-dlp runs` },
          notes: [
            `${fmt(bench.options.memoryDurationMs / 1000)} s, origin unthrottled; bytes served from memory ${mb(served.memory)}, store ${mb(served.s3)}, origin ${mb(served.origin)}; ${result.errors} connection errors; statuses ${JSON.stringify(result.statuses)}`,
            'tubecache only: nginx and Varnish have no equivalent budget here (nginx caches on disk, Varnish was given 2 GB)',
          ],
          raw: { idle, peak, limit, live, ytdlp, load: result, served, makeup: makeup && Object.fromEntries(makeup), uploadsDropped: after.get('tubecache_uploads_dropped_total') },
        };
      } finally {
        await system.stop();
      }
    },
  };
  return scenario;
}

