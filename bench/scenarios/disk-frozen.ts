/**
 * Part of scenario 12: the node with the warm disk tier, restarted on the same
 * DISK_CACHE_DIR with S3 frozen from the start (a fault proxy in front of the
 * S3 server that accepts connections and passes nothing, as a stopped process
 * does), asked for disk-held ranges and whole videos one at a time. Its first
 * byte and whole body are set against the S3 deadlines it would otherwise wait on.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ObjectKeys } from '../../src/cache/keys.js';
import type { VideoId } from '../../src/origin/video-id.js';
import { startFaultProxy } from '../../test/helpers/fault-proxy.js';
import type { Bench } from '../context.js';
import { probe, type ProbeResult } from '../probe.js';
import { percentile } from '../stats.js';
import type { System } from '../systems/process.js';
import { sha256, videoBytes } from '../videos.js';
import { scrape, sum } from './metrics.js';

export const RANGE_SAMPLES = 50;

export interface Quantiles {
  p50: number;
  p95: number;
  max: number;
}

export interface FrozenTimes {
  n: number;
  ttfbMs: Quantiles;
  bodyMs: Quantiles;
}

/** Replies that were not HIT-DISK (exact all the same): the reads that waited on S3 or went to the origin. */
export interface NotFromDisk {
  status: string;
  n: number;
  ttfbMs: Quantiles;
}

export interface FrozenRestart {
  /** Videos whose manifest the disk tier held at the restart (of all asked for). */
  manifestsOnDisk: number;
  videos: number;
  /** From spawning the node to its /healthz answering (start-up asks S3 for the bucket and waits out the deadlines). */
  startupMs: number;
  deadlinesMs: { connect: number; firstByte: number; idle: number };
  /** Half-slice ranges, each inside a slice no earlier request read: those answered HIT-DISK. */
  ranges: FrozenTimes;
  /** Every video whole, after the ranges: those answered HIT-DISK. */
  whole: FrozenTimes;
  /** The other replies, ranges and whole videos together, by X-Cache-Status. */
  notFromDisk: NotFromDisk[];
  /** Bytes served per tier during the reads. */
  bytes: { memory: number; disk: number; s3: number; origin: number };
  /** Requests the node sent to S3 during the reads, by method, as the proxy saw them (none of them answered). */
  s3Requests: Record<string, number>;
}

/** Restarts a node on `dir` (the settings in `env`) with S3 frozen and times reads of `ids`; every reply must be exact, and the HIT-DISK ones are the figure. */
export async function frozenRestart(bench: Bench, dir: string, env: Record<string, string>, ids: readonly string[]): Promise<FrozenRestart> {
  const endpoint = bench.tubecacheEnv.S3_ENDPOINT;
  if (!endpoint) throw new Error('the frozen-S3 restart needs S3_ENDPOINT');
  const keys = new ObjectKeys('');
  const manifestsOnDisk = ids.filter((id) => existsSync(join(dir, 'objects', keys.manifest({ id: id as VideoId, format: bench.format.format })))).length;
  const proxy = await startFaultProxy({ target: endpoint });
  proxy.set({ frozen: true });
  // A fault that matches nothing: its predicate sees every request head, so the proxy counts S3 requests by method.
  let counting = false;
  const s3Requests: Record<string, number> = {};
  const count = ({ method }: { method: string }) => {
    if (counting) s3Requests[method] = (s3Requests[method] ?? 0) + 1;
    return false;
  };
  proxy.failRequests({ status: 500, count: Number.MAX_SAFE_INTEGER, match: count });
  let node: System | undefined;
  try {
    const spawned = performance.now();
    node = await bench.startTubecache('tubecache-disk-s3-frozen', { ...env, DISK_CACHE_DIR: dir, S3_ENDPOINT: proxy.endpoint });
    const startupMs = performance.now() - spawned;
    const url = node.url;
    const video = videoBytes('short');
    const slice = bench.config.SLICE_BYTES;
    const read = async (id: string, range: { start: number; end: number } | undefined): Promise<ProbeResult> => {
      const reply = await probe(`${url}/proxy/${id}`, { hash: true, headers: range ? { Range: `bytes=${range.start}-${range.end}` } : {} });
      const expected = sha256(range ? video.subarray(range.start, range.end + 1) : video);
      if (reply.status !== (range ? 206 : 200) || reply.sha256 !== expected) {
        throw new Error(`S3 frozen: ${id} ${range ? `bytes=${range.start}-${range.end}` : 'whole'} answered ${reply.status} ${reply.headers['x-cache-status']}, ${reply.sha256 === expected ? 'exact' : 'wrong'} bytes`);
      }
      return reply;
    };
    const before = await scrape(url);
    counting = true;
    const ranges: ProbeResult[] = [];
    for (let r = 0; r < RANGE_SAMPLES; r++) {
      // Slice 1, 2, … of each video in turn: no slice is read twice, so none is in memory yet.
      const start = (1 + Math.floor(r / ids.length)) * slice + slice / 4;
      if (start + slice / 2 > video.length) throw new Error(`${RANGE_SAMPLES} distinct slices need more than ${ids.length} videos`);
      ranges.push(await read(ids[r % ids.length]!, { start, end: start + slice / 2 - 1 }));
    }
    const whole: ProbeResult[] = [];
    for (const id of ids) whole.push(await read(id, undefined));
    counting = false;
    const after = await scrape(url);
    const served = (tier: string) => sum(after, `tubecache_served_bytes_total{tier="${tier}"`) - sum(before, `tubecache_served_bytes_total{tier="${tier}"`);
    const fromDisk = (replies: ProbeResult[]) => replies.filter((reply) => reply.headers['x-cache-status'] === 'HIT-DISK');
    const others = new Map<string, ProbeResult[]>();
    for (const reply of [...ranges, ...whole]) {
      const status = String(reply.headers['x-cache-status']);
      if (status !== 'HIT-DISK') others.set(status, [...(others.get(status) ?? []), reply]);
    }
    return {
      manifestsOnDisk,
      videos: ids.length,
      startupMs,
      deadlinesMs: { connect: bench.config.S3_CONNECT_TIMEOUT, firstByte: bench.config.S3_FIRST_BYTE_TIMEOUT, idle: bench.config.S3_IDLE_TIMEOUT },
      ranges: times(fromDisk(ranges)),
      whole: times(fromDisk(whole)),
      notFromDisk: [...others].map(([status, replies]) => ({ status, n: replies.length, ttfbMs: quantiles(replies.map((reply) => reply.ttfbMs)) })),
      bytes: { memory: served('memory'), disk: served('disk'), s3: served('s3'), origin: served('origin') },
      s3Requests,
    };
  } finally {
    // Closed first: the node's shutdown then finds S3 refused rather than waiting out SHUTDOWN_GRACE on a frozen one.
    await proxy.close();
    await node?.stop();
  }
}

function quantiles(values: number[]): Quantiles {
  const sorted = Float64Array.from(values).sort();
  return { p50: percentile(sorted, 0.5), p95: percentile(sorted, 0.95), max: sorted[sorted.length - 1] ?? Number.NaN };
}

function times(replies: readonly ProbeResult[]): FrozenTimes {
  return { n: replies.length, ttfbMs: quantiles(replies.map((reply) => reply.ttfbMs)), bodyMs: quantiles(replies.map((reply) => reply.endedAt - reply.startedAt)) };
}
