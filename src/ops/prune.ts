import type { Logger } from 'pino';
import type { StoreTier } from '../cache/store-tier.js';
import type { Config } from '../config.js';
import type { Metrics } from '../metrics.js';
import { deleteVideos, type DeleteFailure } from './delete.js';
import { DEFAULT_CONCURRENCY, forEachVideo, lastAccess, type StoredVideo } from './scan.js';

/**
 * Slices and access objects without a manifest are normal for a moment: a new
 * video's first slices are uploaded before its manifest is written. Only ones
 * untouched for this long are taken as left behind.
 */
export const ORPHAN_GRACE_MS = 60 * 60_000;

export interface PruneOptions {
  /** Videos not read for this long are deleted. */
  ttlMs: number;
  /** Then the least recently read videos are deleted until the bucket holds at most this much (0: no limit). */
  maxBytes: number;
  /** Report what would be deleted; delete nothing. */
  dryRun: boolean;
  /** Store requests at once (listing shards, delete batches). */
  concurrency: number;
  /** Objects of a video without a manifest are deleted once none is newer than this. */
  orphanGraceMs: number;
}

export type PruneReason = 'ttl' | 'max-bytes' | 'orphan';
export type PrunePhase = 'scan' | 'delete';

export interface PrunedVideo {
  id: string;
  format: string;
  reason: PruneReason;
  lastAccess: string;
  objects: number;
  bytes: number;
}

interface Tally {
  videos: number;
  objects: number;
  bytes: number;
}

export interface PruneSummary {
  dryRun: boolean;
  ttlMs: number;
  maxBytes: number;
  startedAt: string;
  /** Wall time of the run. */
  ms: number;
  scanned: Tally;
  /** With dryRun: what would be deleted. `videos` counts cached videos (with a manifest); orphans are counted apart. */
  deleted: Tally & { expired: number; overBudget: number; orphans: number };
  kept: Tally;
  /** Objects the store refused to delete; a video whose manifest could not be deleted is kept. */
  failures: DeleteFailure[];
  /** The videos (and orphans) deleted, or to be deleted with dryRun. */
  videos: PrunedVideo[];
}

export interface PruneHooks {
  metrics?: Metrics;
  signal?: AbortSignal;
  onProgress?: (phase: PrunePhase, done: number, total?: number) => void;
}

export const defaultPruneOptions = (config: Config): PruneOptions => ({
  ttlMs: config.PRUNE_TTL,
  maxBytes: config.PRUNE_MAX_BYTES,
  dryRun: false,
  concurrency: DEFAULT_CONCURRENCY,
  orphanGraceMs: ORPHAN_GRACE_MS,
});

interface Candidate {
  video: StoredVideo;
  at: number;
}

/**
 * Videos a byte budget may delete, held at once at most: with PRUNE_MAX_BYTES
 * a scan keeps only this many least recently read (a heap), not every video in
 * the bucket; when deleting all of them still leaves the bucket over budget,
 * another scan picks the next ones.
 */
export const BUDGET_CANDIDATES = 100_000;

/**
 * Deletes from the bucket every video not read within the TTL, then (with a
 * byte budget) the least recently read until the rest fits, and the remains
 * of videos that lost their manifest. Manifests go first (see deleteVideos).
 * Memory holds the videos chosen and at most `candidateLimit` others, never the
 * whole bucket.
 */
export async function prune(store: StoreTier, options: PruneOptions, hooks: PruneHooks = {}, candidateLimit = BUDGET_CANDIDATES): Promise<PruneSummary> {
  const started = Date.now();
  const { signal, onProgress } = hooks;
  try {
    const cutoff = started - options.ttlMs;
    const doomed = new Map<string, Candidate & { reason: PruneReason }>();
    let scanned: Tally | undefined;
    for (let round = 0; ; round++) {
      const oldest = new OldestFirst(candidateLimit);
      const tally = { videos: 0, objects: 0, bytes: 0 };
      let kept = 0;
      await forEachVideo(
        store,
        {
          concurrency: options.concurrency,
          signal,
          onObjects: (seen) => round === 0 && onProgress?.('scan', seen),
          onForeign: (object) => {
            tally.objects++;
            tally.bytes += object.size;
            kept += object.size;
          },
        },
        (video) => {
          tally.objects += video.count;
          tally.bytes += video.bytes;
          if (video.manifest) tally.videos++;
          if (doomed.has(keyOf(video))) return;
          const at = lastAccess(video).at;
          if (video.manifest && at < cutoff) return void doomed.set(keyOf(video), { video, at, reason: 'ttl' });
          if (!video.manifest && video.newest < started - options.orphanGraceMs) return void doomed.set(keyOf(video), { video, at: video.newest, reason: 'orphan' });
          kept += video.bytes;
          if (video.manifest && options.maxBytes > 0) oldest.add({ video, at });
        },
      );
      scanned ??= tally;
      if (options.maxBytes <= 0) break;
      for (const candidate of oldest.sorted()) {
        if (kept <= options.maxBytes) break;
        doomed.set(keyOf(candidate.video), { ...candidate, reason: 'max-bytes' });
        kept -= candidate.video.bytes;
      }
      // Every candidate went and the bucket is still over budget: the videos the heap let go come next.
      if (kept <= options.maxBytes || !oldest.dropped) break;
    }

    const chosen = [...doomed.values()].map(({ video }) => video);
    const chosenObjects = chosen.reduce((n, video) => n + video.count, 0);
    const result = options.dryRun
      ? { videos: chosen, objects: chosenObjects, bytes: chosen.reduce((n, video) => n + video.bytes, 0), failures: [] }
      : await deleteVideos(store, chosen, { concurrency: options.concurrency, signal, onDeleted: (n) => onProgress?.('delete', n, chosenObjects) });

    const gone = new Set(result.videos);
    const countOf = (reason: PruneReason) => result.videos.filter((video) => doomed.get(keyOf(video))?.reason === reason).length;
    const deletedVideos = countOf('ttl') + countOf('max-bytes');
    const summary: PruneSummary = {
      dryRun: options.dryRun,
      ttlMs: options.ttlMs,
      maxBytes: options.maxBytes,
      startedAt: new Date(started).toISOString(),
      ms: Date.now() - started,
      scanned: scanned!,
      deleted: { videos: deletedVideos, objects: result.objects, bytes: result.bytes, expired: countOf('ttl'), overBudget: countOf('max-bytes'), orphans: countOf('orphan') },
      kept: { videos: scanned!.videos - deletedVideos, objects: scanned!.objects - result.objects, bytes: scanned!.bytes - result.bytes },
      failures: result.failures,
      videos: chosen
        .filter((video) => gone.has(video))
        .map((video) => {
          const { reason, at } = doomed.get(keyOf(video))!;
          return { id: video.id, format: video.format, reason, lastAccess: new Date(at).toISOString(), objects: video.count, bytes: video.bytes };
        }),
    };
    hooks.metrics?.pruneRuns.inc({ outcome: options.dryRun ? 'dry-run' : summary.failures.length ? 'partial' : 'ok' });
    hooks.metrics?.pruneDeleted.inc(options.dryRun ? 0 : summary.deleted.objects);
    return summary;
  } catch (error) {
    hooks.metrics?.pruneRuns.inc({ outcome: signal?.aborted ? 'aborted' : 'failed' });
    throw error;
  }
}

const keyOf = (video: StoredVideo) => `${video.id}/${video.format}`;

/** The `limit` least recently read candidates seen: a binary heap with the most recent on top, so it is the one let go. */
class OldestFirst {
  readonly #heap: Candidate[] = [];
  /** Whether a candidate was let go (there may be more to delete than this heap held). */
  dropped = false;

  constructor(readonly limit: number) {}

  add(candidate: Candidate): void {
    const heap = this.#heap;
    if (heap.length >= this.limit) {
      this.dropped = true;
      if (candidate.at >= heap[0]!.at) return;
      heap[0] = candidate;
      this.#down(0);
      return;
    }
    heap.push(candidate);
    for (let i = heap.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.at >= heap[i]!.at) break;
      [heap[parent], heap[i]] = [heap[i]!, heap[parent]!];
      i = parent;
    }
  }

  #down(from: number): void {
    const heap = this.#heap;
    for (let i = from; ; ) {
      const [left, right] = [2 * i + 1, 2 * i + 2];
      let top = i;
      if (left < heap.length && heap[left]!.at > heap[top]!.at) top = left;
      if (right < heap.length && heap[right]!.at > heap[top]!.at) top = right;
      if (top === i) return;
      [heap[top], heap[i]] = [heap[i]!, heap[top]!];
      i = top;
    }
  }

  /** Least recently read first. */
  sorted(): Candidate[] {
    return [...this.#heap].sort((a, b) => a.at - b.at);
  }
}

/**
 * Runs prunes one at a time inside the service: on PRUNE_INTERVAL (an unref'd
 * timer, so it never keeps the process alive) and on POST /admin/prune.
 */
export class Pruner {
  readonly #store: StoreTier;
  readonly #config: Config;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #stopping = new AbortController();
  #running: Promise<PruneSummary> | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: { store: StoreTier; config: Config; metrics: Metrics; logger: Logger }) {
    this.#store = options.store;
    this.#config = options.config;
    this.#metrics = options.metrics;
    this.#log = options.logger;
  }

  get running(): boolean {
    return this.#running !== undefined;
  }

  /** One prune with the configured defaults overridden by `overrides`; waits for a prune already running. */
  run(overrides: Partial<PruneOptions> = {}): Promise<PruneSummary> {
    const previous = this.#running;
    const options = { ...defaultPruneOptions(this.#config), ...overrides };
    const run = (async () => {
      await previous?.catch(() => undefined);
      const summary = await prune(this.#store, options, { metrics: this.#metrics, signal: this.#stopping.signal });
      const { videos: _list, ...counts } = summary;
      this.#log.info({ prune: counts }, summary.failures.length ? 'prune finished with failures' : 'prune finished');
      return summary;
    })();
    this.#running = run;
    void run.catch(() => undefined).finally(() => {
      if (this.#running === run) this.#running = undefined;
    });
    return run;
  }

  /** Prunes every `intervalMs`; a tick that finds a prune still running is skipped. */
  schedule(intervalMs: number): void {
    this.#timer = setInterval(() => {
      if (this.running) return;
      this.run().catch((error: unknown) => {
        if (!this.#stopping.signal.aborted) this.#log.error({ err: error }, 'scheduled prune failed');
      });
    }, intervalMs);
    this.#timer.unref();
  }

  /** Stops the schedule and aborts a running prune between store requests. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#stopping.abort(new Error('service closing'));
    await this.#running?.catch(() => undefined);
  }
}
