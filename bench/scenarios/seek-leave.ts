/**
 * Scenario 7: a viewer plays 2 s of a cold 10-minute video, leaves, seeks to
 * the middle, plays 2 s there and leaves for good. What the origin still sends
 * in the 5 s after that: a cache that keeps downloading for nobody wastes the
 * origin's bandwidth (and YouTube's patience).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { headSliceCount } from '../../src/cache/manifest.js';
import type { MediaStats } from '../backend.js';
import { alternate, fmt, MiB, type Scenario } from '../context.js';
import { probe } from '../probe.js';
import { median } from '../stats.js';
import { idsPerSystem, VIDEO_KINDS } from '../videos.js';

const THROTTLE = 2 * MiB;
const PLAY_MS = 2000;
const AFTER_MS = 5000;

interface SeekRun {
  /** Origin body bytes in the AFTER_MS after the second client left. */
  afterLeave: number;
  /** tubecache's allowance: one slice plus the head bytes not fetched yet when the client left. */
  allowed: number;
  received: number;
  seekTtfbMs: number;
}

/** Origin bytes of [0, headEnd] delivered so far, from the per-request records (`bytes=a-b` each). */
function headBytesFetched(stats: MediaStats, headEnd: number): number {
  let total = 0;
  for (const request of stats.requests) {
    const start = Number(/^bytes=(\d+)-/.exec(request.range ?? '')?.[1] ?? 0);
    if (start <= headEnd) total += Math.min(request.bytes, headEnd + 1 - start);
  }
  return total;
}

export function seekLeaveScenario(runs: number): Scenario {
  const ids = idsPerSystem('seek', runs);
  const { size, duration } = VIDEO_KINDS.long;
  const scenario: Scenario = {
    id: '7',
    title: `Seek and leave: 2 s of a cold 10-minute video (${fmt(size / 1e6)} MB) from 0, then 2 s from the middle, origin at 2 MiB/s`,
    videos: Object.values(ids).flat().map((id) => ({ id, kind: 'long' as const })),
    async run(bench) {
      const { backend } = bench;
      const { config } = bench;
      const SLICE = config.SLICE_BYTES;
      const headSlices = headSliceCount({ size, sliceBytes: SLICE, duration, headSeconds: config.HEAD_SECONDS, headBytes: config.HEAD_BYTES, full: config.PERSIST === 'full' });
      const headEnd = Math.min(size, headSlices * SLICE) - 1;
      const results = await alternate(bench.systems, runs, async (system, run): Promise<SeekRun> => {
        const id = ids[system.name][run]!;
        await backend.call('setThrottle', [id], THROTTLE);
        const url = `${system.url}/proxy/${id}`;
        const first = await probe(url, { headers: { Range: 'bytes=0-' }, leaveAfterStartMs: PLAY_MS });
        const seek = await probe(url, { headers: { Range: `bytes=${Math.floor(size / 2)}-` }, leaveAfterStartMs: PLAY_MS });
        const atLeave = await backend.call('stats', id);
        await sleep(AFTER_MS);
        const later = await backend.call('stats', id);
        await backend.call('setThrottle', [id], undefined);
        const result: SeekRun = {
          afterLeave: later.mediaBytes - atLeave.mediaBytes,
          allowed: SLICE + Math.max(0, headEnd + 1 - headBytesFetched(atLeave, headEnd)),
          received: first.bytes + seek.bytes,
          seekTtfbMs: seek.ttfbMs,
        };
        bench.log(`  ${system.name}: ${fmt(result.afterLeave / 1e6)} MB from the origin in the ${AFTER_MS / 1000} s after leaving; clients got ${fmt(result.received / 1e6)} MB; seek TTFB ${fmt(result.seekTtfbMs)} ms`);
        return result;
      });
      const med = (system: string, pick: (run: SeekRun) => number) => median([...results].find(([s]) => s.name === system)![1].map(pick));
      const row = (metric: string, pick: (run: SeekRun) => number) => ({
        metric,
        values: Object.fromEntries(bench.systems.map((system) => [system.name, fmt(med(system.name, pick))])),
      });
      const tubecache = results.get(bench.systems[0]!)!;
      const worst = tubecache.reduce((a, b) => (b.afterLeave - b.allowed > a.afterLeave - a.allowed ? b : a));
      return {
        id: scenario.id,
        title: scenario.title,
        target: `origin bytes in the ${AFTER_MS / 1000} s after the last client left ≤ 1 slice + the unfinished head (${headSlices} × 1 MiB slices)`,
        rows: [
          row(`origin MB in the ${AFTER_MS / 1000} s after`, (run) => run.afterLeave / 1e6),
          { metric: 'allowed MB', values: { tubecache: fmt(med('tubecache', (run) => run.allowed / 1e6)) } },
          row('MB the clients received', (run) => run.received / 1e6),
          row('seek TTFB ms', (run) => run.seekTtfbMs),
        ],
        verdict: { met: tubecache.every((run) => run.afterLeave <= run.allowed), measured: `worst of ${runs}: ${fmt(worst.afterLeave / 1e6)} MB vs ${fmt(worst.allowed / 1e6)} MB allowed` },
        notes: [
          `medians of ${runs} runs, each on a fresh video`,
          `seek TTFB is mostly the origin's pacing: at 2 MiB/s it sends 64 KiB every 31 ms, and the seek offset lies ${(Math.floor(size / 2) % SLICE).toLocaleString('en-US')} bytes into its 1 MiB slice, so a slice-fetching proxy waits for the origin's second chunk; Varnish fetches the whole object from byte 0 and had not reached the middle within 2 s`,
        ],
        raw: Object.fromEntries([...results].map(([system, list]) => [system.name, list])),
      };
    },
  };
  return scenario;
}
