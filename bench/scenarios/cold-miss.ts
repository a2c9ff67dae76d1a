/**
 * Scenario 4: the first request for a video nobody has cached, with the origin
 * throttled to ~2 MB/s. tubecache's resolution is already cached (the yt-dlp
 * run is not what is measured): a first request that the origin answers with
 * 503s resolves the video and fails before any byte, so the measured request
 * is tubecache's first byte fetch. nginx and Varnish get their own cold videos;
 * the baseline is the origin's own time to first byte for the same request.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { alternate, fmt, type Scenario } from '../context.js';
import { probe } from '../probe.js';
import { summary } from '../stats.js';
import { idsPerSystem, newVideoId } from '../videos.js';
import type { VideoId } from '../../src/origin/video-id.js';

const THROTTLE = 2_000_000;

export function coldMissScenario(samples: number): Scenario {
  const ids = idsPerSystem('cold', samples);
  const originId = newVideoId('cold');
  const scenario: Scenario = {
    id: '4',
    title: 'Cold miss: time to first byte, resolution cached, origin at ~2 MB/s',
    videos: [...Object.values(ids).flat(), originId].map((id) => ({ id, kind: 'short' as const })),
    async run(bench) {
      const { backend } = bench;
      const all = [...Object.values(ids).flat(), originId];
      await backend.call('setThrottle', all, THROTTLE);

      // Resolve tubecache's videos without fetching a byte: every origin answer is a 503 until the fault is lifted.
      const tubecache = bench.systems[0]!;
      await Promise.all(
        ids.tubecache.map(async (id) => {
          await backend.call('setFault', id, { kind: 'status', status: 503, times: Infinity });
          const reply = await probe(`${tubecache.url}/proxy/${id}`);
          await backend.call('setFault', id, undefined);
          if (reply.status < 500) throw new Error(`tubecache answered ${reply.status} while resolving ${id}; expected a 5xx`);
        }),
      );
      // The failed attempt left its first slice's lease released; a video nobody has fetched has none, so neither do these.
      const format = bench.format.format;
      await bench.store.store.delete(ids.tubecache.map((id) => bench.store.keys.lease({ id: id as VideoId, format }, 0)));
      const resolvesBefore = await Promise.all(ids.tubecache.map((id) => backend.call('stats', id).then((stats) => stats.resolves)));

      const ttfb = new Map<string, number[]>();
      const record = (name: string, ms: number) => ttfb.set(name, [...(ttfb.get(name) ?? []), ms]);
      const originUrl = `${backend.originUrl}${bench.paths[originId]}`;
      const results = await alternate(bench.systems, samples, async (system, sample) => {
        const id = ids[system.name][sample]!;
        const reply = await probe(`${system.url}/proxy/${id}`, { headers: { Range: 'bytes=0-' }, leaveAfterMs: 0 });
        if (reply.status !== 200 && reply.status !== 206) throw new Error(`${system.name} answered ${reply.status} for cold video ${id}`);
        // The origin's own answer to what tubecache asks for a first slice, between the systems' samples.
        const own = await probe(originUrl, { headers: { Range: `bytes=0-${bench.config.SLICE_BYTES - 1}`, 'X-Origin-Token': backend.token }, leaveAfterMs: 0 });
        record('baseline', own.ttfbMs);
        record(system.name, reply.ttfbMs);
        // tubecache asks S3 for the manifest before it goes to the origin: what that miss costs by itself.
        const began = performance.now();
        await bench.store.getManifest({ id: id as VideoId, ...bench.format, format: `${bench.format.format}-absent` }, bench.config.SLICE_BYTES);
        record('s3Miss', performance.now() - began);
        // Whatever the system still fetches in the background finishes at full speed, out of the next sample's way.
        await backend.call('setThrottle', [id], undefined);
        await sleep(100);
        return reply.ttfbMs;
      });
      const resolvesAfter = await Promise.all(ids.tubecache.map((id) => backend.call('stats', id).then((stats) => stats.resolves)));
      const extraResolves = resolvesAfter.reduce((sum, n, i) => sum + n - resolvesBefore[i]!, 0);
      await backend.call('setThrottle', all, undefined);

      const { s3Miss, ...stats } = Object.fromEntries([...ttfb].map(([name, values]) => [name, summary(values)]));
      const tc = stats.tubecache!;
      const own = stats.baseline!;
      for (const [system, values] of results) bench.log(`  ${system.name}: p50 ${fmt(summary(values).p50)} ms`);
      bench.log(`  origin: p50 ${fmt(own.p50)} ms`);
      return {
        id: scenario.id,
        title: scenario.title,
        target: 'p50 ≤ origin p50 + 3 ms',
        baseline: "the origin's own first byte for bytes=0-1048575 (fresh connection, like the clients')",
        rows: [
          { metric: 'TTFB p50 ms', values: Object.fromEntries(Object.entries(stats).map(([name, s]) => [name, fmt(s.p50)])) },
          { metric: 'TTFB p90 ms', values: Object.fromEntries(Object.entries(stats).map(([name, s]) => [name, fmt(s.p90)])) },
          { metric: 'S3 GetObject of an absent manifest, p50 ms', values: { baseline: fmt(s3Miss!.p50) } },
        ],
        verdict: { met: tc.p50 - own.p50 <= 3, measured: `+${fmt(tc.p50 - own.p50)} ms over the origin` },
        notes: [`${tc.n} cold videos per system; yt-dlp runs during the measured requests: ${extraResolves} (resolutions cached: each video was asked once while the origin answered 503, and the lease that attempt left was deleted)`],
        raw: { ttfb: Object.fromEntries(ttfb), extraResolves },
      };
    },
  };
  return scenario;
}
