/**
 * Scenario 5: many clients ask for the same cold video at once, origin
 * throttled to 2 MiB/s. How many bytes the origin sent per video byte, how many
 * yt-dlp runs, and how far apart the clients' first bytes landed.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { alternate, fmt, MiB, type Scenario } from '../context.js';
import { probe } from '../probe.js';
import { median, summary } from '../stats.js';
import { idsPerSystem, sha256, VIDEO_KINDS, videoBytes } from '../videos.js';

const THROTTLE = 2 * MiB;

interface FanoutRun {
  originRatio: number;
  originRequests: number;
  ytdlpRuns: number;
  /** Last client's first byte minus the first client's, ms. */
  spreadMs: number;
  ttfbP50Ms: number;
  /** Until the last client had every byte, ms. */
  completeMs: number;
  incomplete: number;
}

export function fanoutScenario(clients: number, runs: number): Scenario {
  const ids = idsPerSystem('fan', runs);
  const size = VIDEO_KINDS.short.size;
  const scenario: Scenario = {
    id: '5',
    title: `Fan-out: ${clients} clients, one cold video, origin at 2 MiB/s`,
    videos: Object.values(ids).flat().map((id) => ({ id, kind: 'short' as const })),
    async run(bench) {
      const { backend } = bench;
      const expected = sha256(videoBytes('short'));
      const results = await alternate(bench.systems, runs, async (system, run): Promise<FanoutRun> => {
        const id = ids[system.name][run]!;
        await backend.call('setThrottle', [id], THROTTLE);
        // Every client on its own connection, all requests out before any answer can come back.
        const replies = await Promise.all(
          Array.from({ length: clients }, (_, client) => probe(`${system.url}/proxy/${id}`, { headers: { Range: 'bytes=0-' }, hash: client === 0 })),
        );
        await sleep(500); // let a fetch still finishing upstream show in the counters
        const stats = await backend.call('stats', id);
        await backend.call('setThrottle', [id], undefined);
        if (replies[0]!.sha256 !== expected) throw new Error(`${system.name}: wrong bytes in fan-out`);
        const firstBytes = replies.map((reply) => reply.firstByteAt);
        const started = Math.min(...replies.map((reply) => reply.startedAt));
        const result: FanoutRun = {
          originRatio: stats.mediaBytes / size,
          originRequests: stats.mediaRequests,
          ytdlpRuns: stats.resolves,
          spreadMs: Math.max(...firstBytes) - Math.min(...firstBytes),
          ttfbP50Ms: summary(replies.map((reply) => reply.ttfbMs)).p50,
          completeMs: Math.max(...replies.map((reply) => reply.endedAt)) - started,
          incomplete: replies.filter((reply) => !reply.complete || reply.bytes !== size).length,
        };
        bench.log(`  ${system.name}: origin ${fmt(result.originRatio)}× size in ${result.originRequests} requests, ${result.ytdlpRuns} yt-dlp, spread ${fmt(result.spreadMs)} ms, all done in ${fmt(result.completeMs)} ms`);
        return result;
      });
      const med = (system: string, pick: (run: FanoutRun) => number) => {
        const runsOf = [...results].find(([s]) => s.name === system)?.[1];
        return runsOf ? median(runsOf.map(pick)) : Number.NaN;
      };
      const row = (metric: string, pick: (run: FanoutRun) => number, format = fmt) => ({
        metric,
        values: Object.fromEntries(bench.systems.map((system) => [system.name, format(med(system.name, pick))])),
      });
      // The anchors fetch a fixed signed URL: they never run yt-dlp.
      const ytdlp = row('yt-dlp runs', (run) => run.ytdlpRuns);
      for (const system of bench.systems.slice(1)) ytdlp.values[system.name] = 'n/a';
      const tubecache = results.get(bench.systems[0]!)!;
      const worst = {
        ratio: Math.max(...tubecache.map((run) => run.originRatio)),
        ytdlp: Math.max(...tubecache.map((run) => run.ytdlpRuns)),
        spread: Math.max(...tubecache.map((run) => run.spreadMs)),
      };
      const incomplete = [...results].flatMap(([system, list]) => (list.some((run) => run.incomplete) ? [`${system.name}: ${list.map((run) => run.incomplete).join('/')} clients short`] : []));
      return {
        id: scenario.id,
        title: scenario.title,
        target: 'origin bytes ÷ size = 1.00, 1 yt-dlp run, first bytes within 50 ms of each other',
        rows: [
          row('origin bytes ÷ size', (run) => run.originRatio, (value) => value.toFixed(2)),
          row('origin requests', (run) => run.originRequests),
          ytdlp,
          row('first-byte spread ms', (run) => run.spreadMs),
          row('TTFB p50 ms', (run) => run.ttfbP50Ms),
          row('last client done ms', (run) => run.completeMs),
        ],
        verdict: {
          met: worst.ratio < 1.005 && worst.ytdlp === 1 && worst.spread <= 50,
          measured: `worst of ${runs}: ${worst.ratio.toFixed(3)}× size, ${worst.ytdlp} yt-dlp run(s), spread ${fmt(worst.spread)} ms`,
        },
        notes: [`medians of ${runs} runs, each on a fresh video; ${size.toLocaleString('en-US')} bytes; tubecache's TTFB includes its one yt-dlp run (the stand-in is a Node script: ~100–150 ms), the anchors fetch a fixed signed URL`, ...incomplete],
        raw: Object.fromEntries([...results].map(([system, list]) => [system.name, list])),
      };
    },
  };
  return scenario;
}
