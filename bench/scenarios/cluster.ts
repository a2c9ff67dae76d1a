/**
 * Scenario 11: three tubecache nodes on one bucket, 30 cold clients spread
 * over them (as a balancer spreads a room), origin at 4 MiB/s; next to one
 * node alone with the same 30 clients. Origin bytes per video byte, yt-dlp
 * runs, how far apart the first bytes landed, and when the last client was
 * done. Nodes share origin fetches through S3 leases (src/cache/lease.ts),
 * so the scenario needs S3 with conditional writes (S3_ENDPOINT).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { fmt, MiB, type Bench, type Scenario } from '../context.js';
import { probe } from '../probe.js';
import { median, summary } from '../stats.js';
import type { System } from '../systems/process.js';
import { newVideoId, sha256, VIDEO_KINDS, videoBytes } from '../videos.js';

const THROTTLE = 4 * MiB;
const CLIENTS = 30;
const NODES = 3;

interface ClusterRun {
  originRatio: number;
  ytdlpRuns: number;
  /** Last client's first byte minus the first client's, ms. */
  spreadMs: number;
  ttfbP50Ms: number;
  /** Median TTFB of the fastest node's clients (the lease holder's, in a cluster) and of the slowest node's (a follower's), ms. */
  leaderTtfbMs: number;
  followerTtfbMs: number;
  /** The leader's first slice fetch: from its clients' first byte to the slice's last (median over its clients), ms. */
  leaderSliceMs: number;
  /** Until the last client had every byte, ms. */
  completeMs: number;
  incomplete: number;
}

export function clusterScenario(runs: number, peers: boolean): Scenario {
  const ids = { cluster: Array.from({ length: runs }, () => newVideoId('clus')), alone: Array.from({ length: runs }, () => newVideoId('alon')) };
  const warmId = newVideoId('warm');
  const size = VIDEO_KINDS.long.size;
  const scenario: Scenario = {
    id: '11',
    title: `Nodes on one bucket: ${CLIENTS} cold clients over ${NODES} nodes, origin at 4 MiB/s${peers ? ', streaming slices from each other (PEER_URL)' : ''}`,
    videos: [...ids.cluster, ...ids.alone, warmId].map((id) => ({ id, kind: 'long' as const })),
    async run(bench) {
      if (!bench.tubecacheEnv.S3_ENDPOINT) throw new Error('scenario 11 needs S3 with conditional writes: set S3_ENDPOINT (and its keys, S3_BUCKET)');
      const first = bench.systems[0]!;
      const others: System[] = [];
      try {
        for (let n = 2; n <= NODES; n++) others.push(await bench.startTubecache(`tubecache-node${n}`, {}));
        const cluster = [first, ...others];
        // One unmeasured run: the new nodes' first requests would also time their JIT and their first S3 connections.
        await measure(bench, warmId, cluster);
        const results = { cluster: [] as ClusterRun[], alone: [] as ClusterRun[] };
        for (let run = 0; run < runs; run++) {
          // Alternate which goes first, so neither always meets a quieter machine.
          const order = run % 2 ? (['alone', 'cluster'] as const) : (['cluster', 'alone'] as const);
          for (const kind of order) {
            const result = await measure(bench, ids[kind][run]!, kind === 'cluster' ? cluster : [first]);
            bench.log(`  ${kind}: origin ${fmt(result.originRatio)}× size, ${result.ytdlpRuns} yt-dlp, spread ${fmt(result.spreadMs)} ms, TTFB p50 ${fmt(result.leaderTtfbMs)}–${fmt(result.followerTtfbMs)} ms by node, all done in ${fmt(result.completeMs)} ms`);
            results[kind].push(result);
          }
        }
        const row = (metric: string, pick: (run: ClusterRun) => number, format = fmt) => ({
          metric,
          values: { tubecache: format(median(results.cluster.map(pick))), baseline: format(median(results.alone.map(pick))) },
        });
        const sliceMs = (bench.config.SLICE_BYTES / THROTTLE) * 1000;
        // The target: the leader's first byte plus its slice fetch, as its own clients saw the slice arrive, plus 100 ms.
        const lateMs = (r: ClusterRun) => r.followerTtfbMs - (r.leaderTtfbMs + r.leaderSliceMs + 100);
        const worst = {
          ratio: Math.max(...results.cluster.map((r) => r.originRatio)),
          ytdlp: Math.max(...results.cluster.map((r) => r.ytdlpRuns)),
          late: Math.max(...results.cluster.map(lateMs)),
        };
        const incomplete = Object.entries(results).flatMap(([kind, list]) => (list.some((r) => r.incomplete) ? [`${kind}: ${list.map((r) => r.incomplete).join('/')} clients short`] : []));
        return {
          id: scenario.id,
          title: scenario.title,
          target: 'three nodes: origin bytes ≤ 1.05× size, 1 yt-dlp run; followers\' first byte ≤ the leader\'s slice fetch + 100 ms',
          baseline: 'one node alone, the same 30 clients',
          rows: [
            row('origin bytes ÷ size', (r) => r.originRatio, (value) => value.toFixed(2)),
            row('yt-dlp runs', (r) => r.ytdlpRuns),
            row('first-byte spread ms', (r) => r.spreadMs),
            row('TTFB p50 ms', (r) => r.ttfbP50Ms),
            row('TTFB p50 ms, fastest node (the leader)', (r) => r.leaderTtfbMs),
            row('TTFB p50 ms, slowest node (a follower)', (r) => r.followerTtfbMs),
            row('leader\'s first slice fetch ms (its clients\' first byte to the slice\'s last)', (r) => r.leaderSliceMs),
            row('last client done ms', (r) => r.completeMs),
          ],
          verdict: {
            met: worst.ratio <= 1.05 && worst.ytdlp === 1 && worst.late <= 0,
            measured: `worst of ${runs}: ${worst.ratio.toFixed(3)}× size, ${worst.ytdlp} yt-dlp run(s); a follower's first byte ${fmt(Math.abs(worst.late))} ms ${worst.late > 0 ? 'after' : 'before'} the leader's first byte + its slice fetch + 100 ms (against the slice's nominal ${fmt(sliceMs)} ms instead: ${fmt(Math.max(...results.cluster.map((r) => r.followerTtfbMs - (r.leaderTtfbMs + sliceMs + 100))))} ms)`,
          },
          notes: [
            `medians of ${runs} runs, each on a fresh video, after one unmeasured run on the three nodes; ${size.toLocaleString('en-US')} bytes; client i goes to node i mod ${NODES}; the nodes share the one CPU given to the systems under test`,
            peers
              ? `PEER_URL set (BENCH_PEERS=1): a follower streams a slice from the node holding its lease as it arrives; a ${fmt(bench.config.SLICE_BYTES / MiB)} MiB slice takes ${fmt(sliceMs)} ms at the origin's nominal pace`
              : `a ${fmt(bench.config.SLICE_BYTES / MiB)} MiB slice takes ${fmt(sliceMs)} ms at the origin's nominal pace: without PEER_URL a follower's first byte waits for the leader's whole first slice (streamed to S3 as it arrives), the upload's last round trip, and a poll (every 20 ms)`,
            ...incomplete,
          ],
          raw: results,
        };
      } finally {
        for (const node of others) await node.stop();
      }
    },
  };
  return scenario;
}

async function measure(bench: Bench, id: string, nodes: readonly System[]): Promise<ClusterRun> {
  const { backend } = bench;
  const expected = sha256(videoBytes('long'));
  await backend.call('setThrottle', [id], THROTTLE);
  const replies = await Promise.all(
    Array.from({ length: CLIENTS }, (_, client) => probe(`${nodes[client % nodes.length]!.url}/proxy/${id}`, { headers: { Range: 'bytes=0-' }, hash: client < nodes.length, markAtBytes: bench.config.SLICE_BYTES })),
  );
  await sleep(500); // let a fetch still finishing upstream show in the counters
  const stats = await backend.call('stats', id);
  await backend.call('setThrottle', [id], undefined);
  for (const reply of replies.slice(0, nodes.length)) if (reply.sha256 !== expected) throw new Error(`wrong bytes from ${nodes.length} node(s)`);
  const firstBytes = replies.map((reply) => reply.firstByteAt);
  const started = Math.min(...replies.map((reply) => reply.startedAt));
  const byNode = nodes.map((_, n) => replies.filter((_, client) => client % nodes.length === n));
  const perNode = byNode.map((own) => summary(own.map((reply) => reply.ttfbMs)).p50);
  const leader = perNode.indexOf(Math.min(...perNode));
  return {
    originRatio: stats.mediaBytes / VIDEO_KINDS.long.size,
    ytdlpRuns: stats.resolves,
    spreadMs: Math.max(...firstBytes) - Math.min(...firstBytes),
    ttfbP50Ms: summary(replies.map((reply) => reply.ttfbMs)).p50,
    leaderTtfbMs: Math.min(...perNode),
    followerTtfbMs: Math.max(...perNode),
    leaderSliceMs: summary(byNode[leader]!.map((reply) => reply.markedAt - reply.firstByteAt)).p50,
    completeMs: Math.max(...replies.map((reply) => reply.endedAt)) - started,
    incomplete: replies.filter((reply) => !reply.complete || reply.bytes !== VIDEO_KINDS.long.size).length,
  };
}
