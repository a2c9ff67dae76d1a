/**
 * Scenario 3: a slice that only S3 holds. tubecache's time to first byte for
 * the slice against a plain GetObject of the same object from the same S3
 * server, sample by sample, alternating. The tubecache process serving it has
 * a memory budget smaller than a slice, so every read goes to S3.
 */
import { Agent } from 'node:http';
import type { VideoId } from '../../src/origin/video-id.js';
import { fmt, type Scenario } from '../context.js';
import { probe } from '../probe.js';
import { summary } from '../stats.js';
import { newVideoId, sha256, VIDEO_KINDS, videoBytes } from '../videos.js';
import { waitForPersisted } from './persisted.js';

/** Samples dropped at the start: connection set-up and the first manifest read. */
const WARMUP_SAMPLES = 3;

export function s3HitScenario(): Scenario {
  // No duration in the resolution: tubecache persists HEAD_BYTES (8 MiB), the whole video.
  const id = newVideoId('s3hit');
  const scenario: Scenario = {
    id: '3',
    title: 'S3 hit: time to first byte of a 1 MiB slice (memory empty, head persisted)',
    videos: [{ id, kind: 'short', noDuration: true }],
    async run(bench) {
      const SLICE = bench.config.SLICE_BYTES;
      const slices = Math.floor(VIDEO_KINDS.short.size / SLICE); // the full-size ones
      const main = bench.systems[0]!;
      const whole = await probe(`${main.url}/proxy/${id}`, { hash: true });
      if (whole.sha256 !== sha256(videoBytes('short'))) throw new Error('tubecache: wrong bytes while warming the S3 video');
      const video = { id: id as VideoId, ...bench.format };
      const manifest = await waitForPersisted(bench, video, Math.ceil(VIDEO_KINDS.short.size / SLICE));

      // The least budget allowed (two slices) keeps one slice: probes that go from slice to slice never hit memory.
      const cold = await bench.startTubecache('tubecache-s3', { MEMORY_CACHE_BYTES: String(2 * SLICE) });
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const samples = { tubecache: [] as number[], getObject: [] as number[] };
      const statuses: Record<string, number> = {};
      try {
        const viaTubecache = async (index: number) => {
          const start = index * SLICE;
          const reply = await probe(`${cold.url}/proxy/${id}`, { agent, headers: { Range: `bytes=${start}-${start + SLICE - 1}` }, hash: true });
          const status = String(reply.headers['x-cache-status']);
          statuses[status] = (statuses[status] ?? 0) + 1;
          if (reply.sha256 !== sha256(videoBytes('short').subarray(start, start + SLICE))) throw new Error(`tubecache-s3: wrong bytes for slice ${index}`);
          return reply.ttfbMs;
        };
        const viaGetObject = async (index: number) => {
          const began = performance.now();
          // A plain GetObject with S3 (a file read with the disk store), through the store tubecache uses.
          const object = await bench.store.store.get(bench.store.keys.slice(manifest, index));
          let firstByte = Number.NaN;
          for await (const chunk of object?.body ?? []) if (Number.isNaN(firstByte) && chunk.length) firstByte = performance.now();
          return firstByte - began;
        };
        const total = bench.options.ttfbSamples + WARMUP_SAMPLES;
        for (let i = 0; i < total; i++) {
          const index = i % slices;
          // Alternate which goes first, so neither always meets a warmer S3 server.
          const pair = i % 2 ? [await viaGetObject(index), await viaTubecache(index)].reverse() : [await viaTubecache(index), await viaGetObject(index)];
          if (i < WARMUP_SAMPLES) continue;
          samples.tubecache.push(pair[0]!);
          samples.getObject.push(pair[1]!);
        }
      } finally {
        agent.destroy();
        await cold.stop();
      }
      const tc = summary(samples.tubecache);
      const s3 = summary(samples.getObject);
      const allowed = 1.2 * s3.p50 + 2;
      bench.log(`  tubecache p50 ${fmt(tc.p50)} ms, GetObject p50 ${fmt(s3.p50)} ms`);
      return {
        id: scenario.id,
        title: scenario.title,
        target: 'p50 ≤ 1.2 × GetObject p50 + 2 ms',
        baseline: 'a plain GetObject of the same slice object (AWS SDK, same S3 server, keep-alive)',
        rows: [
          { metric: 'TTFB p50 ms', values: { tubecache: fmt(tc.p50), baseline: fmt(s3.p50) } },
          { metric: 'TTFB p90 ms', values: { tubecache: fmt(tc.p90), baseline: fmt(s3.p90) } },
        ],
        verdict: { met: tc.p50 <= allowed, measured: `${fmt(tc.p50)} ms vs ${fmt(allowed)} ms allowed` },
        notes: [
          `${tc.n} samples each over slices 0–${slices - 1}; tubecache answered ${Object.entries(statuses).map(([status, n]) => `${status} ×${n}`).join(', ')}`,
          'nginx and Varnish have no second tier: no column',
        ],
        raw: { samples, statuses },
      };
    },
  };
  return scenario;
}
