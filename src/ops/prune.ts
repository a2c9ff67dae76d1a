import type { Logger } from 'pino';
import type { StoreTier } from '../cache/store-tier.js';
import type { Config } from '../config.js';
import type { Metrics } from '../metrics.js';
import { deleteVideos, type DeleteFailure } from './delete.js';
import { DEFAULT_CONCURRENCY, forEachVideo, lastAccess, type StoredObject, type StoredVideo } from './scan.js';

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
  /** Slices shared beyond the head and lease objects (src/cache/lease.ts) older than this are deleted (SHARED_TTL). */
  sharedTtlMs?: number;
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
  /** With dryRun: what would be deleted. `videos` counts cached videos (with a manifest); orphans are counted apart; `shared`: objects of shared slices and leases past SHARED_TTL, of kept videos. */
  deleted: Tally & { expired: number; overBudget: number; orphans: number; shared: number };
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
  sharedTtlMs: config.SHARED_TTL,
});

interface Candidate {
  video: StoredVideo;
  at: number;
}

/**
 * Deletes from the bucket every video not read within the TTL, then (with a
 * byte budget) the least recently read until the rest fits, and the remains
 * of videos that lost their manifest. Manifests go first (see deleteVideos).
 */
export async function prune(store: StoreTier, options: PruneOptions, hooks: PruneHooks = {}): Promise<PruneSummary> {
  const started = Date.now();
  const { signal, onProgress } = hooks;
  try {
    const videos: StoredVideo[] = [];
    const cached: Candidate[] = [];
    let foreign = { objects: 0, bytes: 0 };
    await forEachVideo(
      store,
      {
        concurrency: options.concurrency,
        signal,
        onObjects: (seen) => onProgress?.('scan', seen),
        onForeign: (object) => (foreign = { objects: foreign.objects + 1, bytes: foreign.bytes + object.size }),
      },
      (video) => {
        videos.push(video);
        if (video.manifest) cached.push({ video, at: lastAccess(video).at });
      },
    );

    const cutoff = started - options.ttlMs;
    const doomed = new Map<StoredVideo, { reason: PruneReason; at: number }>();
    for (const { video, at } of cached) if (at < cutoff) doomed.set(video, { reason: 'ttl', at });
    for (const video of videos) {
      if (!video.manifest && video.newest < started - options.orphanGraceMs) doomed.set(video, { reason: 'orphan', at: video.newest });
    }

    if (options.maxBytes > 0) {
      let total = foreign.bytes;
      for (const video of videos) if (!doomed.has(video)) total += video.bytes;
      const leastRecent = cached.filter(({ video }) => !doomed.has(video)).sort((a, b) => a.at - b.at);
      for (const { video, at } of leastRecent) {
        if (total <= options.maxBytes) break;
        doomed.set(video, { reason: 'max-bytes', at });
        total -= video.bytes;
      }
    }

    const chosen = [...doomed.keys()];
    const chosenObjects = chosen.reduce((n, video) => n + video.count, 0);
    const result = options.dryRun
      ? { videos: chosen, objects: chosenObjects, bytes: chosen.reduce((n, video) => n + video.bytes, 0), failures: [] }
      : await deleteVideos(store, chosen, { concurrency: options.concurrency, signal, onDeleted: (n) => onProgress?.('delete', n, chosenObjects) });

    const shared = await pruneShared(store, videos, doomed, started, options, signal);
    result.objects += shared.objects;
    result.bytes += shared.bytes;
    result.failures.push(...shared.failures);
    const gone = new Set(result.videos);
    const countOf = (reason: PruneReason) => result.videos.filter((video) => doomed.get(video)?.reason === reason).length;
    const scannedObjects = videos.reduce((n, v) => n + v.count, 0) + foreign.objects + shared.leases.objects;
    const scannedBytes = videos.reduce((n, v) => n + v.bytes, 0) + foreign.bytes + shared.leases.bytes;
    const deletedVideos = countOf('ttl') + countOf('max-bytes');
    const summary: PruneSummary = {
      dryRun: options.dryRun,
      ttlMs: options.ttlMs,
      maxBytes: options.maxBytes,
      startedAt: new Date(started).toISOString(),
      ms: Date.now() - started,
      scanned: { videos: cached.length, objects: scannedObjects, bytes: scannedBytes },
      deleted: { videos: deletedVideos, objects: result.objects, bytes: result.bytes, expired: countOf('ttl'), overBudget: countOf('max-bytes'), orphans: countOf('orphan'), shared: shared.objects },
      kept: { videos: cached.length - deletedVideos, objects: scannedObjects - result.objects, bytes: scannedBytes - result.bytes },
      failures: result.failures,
      videos: chosen
        .filter((video) => gone.has(video))
        .map((video) => {
          const { reason, at } = doomed.get(video)!;
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

/**
 * Slices shared beyond the head of the videos kept, and lease objects, once
 * older than `sharedTtlMs`: other nodes read them only while a video is being
 * watched, and a lease outlives its fetch only as the mark of a shared slice.
 */
async function pruneShared(
  store: StoreTier,
  videos: readonly StoredVideo[],
  doomed: ReadonlyMap<StoredVideo, unknown>,
  started: number,
  options: PruneOptions,
  signal: AbortSignal | undefined,
): Promise<{ objects: number; bytes: number; failures: DeleteFailure[]; leases: Tally }> {
  const leases = { videos: 0, objects: 0, bytes: 0 };
  if (options.sharedTtlMs === undefined) return { objects: 0, bytes: 0, failures: [], leases };
  const cutoff = started - options.sharedTtlMs;
  const stale = videos.filter((video) => !doomed.has(video)).flatMap((video) => video.shared.filter((object) => object.lastModified < cutoff));
  for await (const page of store.list(store.keys.leasesRoot)) {
    signal?.throwIfAborted();
    leases.objects += page.length;
    leases.bytes += page.reduce((n, object) => n + object.size, 0);
    stale.push(...page.filter((object) => object.lastModified < cutoff));
  }
  const sum = (objects: readonly StoredObject[]) => objects.reduce((n, object) => n + object.size, 0);
  if (options.dryRun || stale.length === 0) return { objects: stale.length, bytes: sum(stale), failures: [], leases };
  const failures = await store.deleteKeys(stale.map((object) => object.key));
  const failed = new Set(failures.map((failure) => failure.key));
  const deleted = stale.filter((object) => !failed.has(object.key));
  return { objects: deleted.length, bytes: sum(deleted), failures, leases };
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
