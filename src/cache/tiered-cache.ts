import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { isTubeError } from '../errors.js';
import { Limiter } from '../limiter.js';
import type { Metrics, TierName } from '../metrics.js';
import type { OriginFacts, OriginFetcher } from '../origin/fetcher.js';
import { mp4Duration } from '../origin/mp4.js';
import type { Resolver } from '../origin/resolver.js';
import type { VideoId } from '../origin/video-id.js';
import { formatKey, type VideoRef } from './keys.js';
import { createManifest, headSliceCount, sliceBounds, withPersisted, type Manifest } from './manifest.js';
import type { MemoryTier } from './memory-tier.js';
import type { S3Tier } from './s3-tier.js';
import { SliceFlight } from './slice-flight.js';

export type CacheStatus = 'HIT' | 'HIT-S3' | 'MISS';

/** A slice a reader holds: bytes already in memory, or a fetch in flight. */
type SliceHandle = { tier: 'memory'; bytes: Buffer; flight?: undefined } | { tier?: undefined; bytes?: undefined; flight: SliceFlight };

/** Uploaded head slices read back by prefetch at most this many at a time. */
const PREFETCH_PARALLEL = 2;

/**
 * The read-through cache: memory → S3 → origin, slice by slice. One fetch per
 * slice per process (readers join it), one slice of read-ahead, head slices
 * persisted to S3 in the background through a bounded upload queue.
 */
export class TieredCache {
  readonly #config: Config;
  readonly #memory: MemoryTier;
  readonly #s3: S3Tier;
  readonly #resolver: Resolver;
  readonly #fetcher: OriginFetcher;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #format: string;
  readonly #flights = new Map<string, SliceFlight>();
  readonly #manifestRuns = new Map<string, Promise<{ manifest: Manifest; tier: TierName }>>();
  readonly #uploads: Limiter;
  readonly #pendingPersisted = new Map<string, { manifest: Manifest; indexes: Set<number> }>();
  readonly #touched: LRUCache<string, true>;
  readonly #persistedSets = new WeakMap<Manifest, Set<number>>();
  #closing = false;

  constructor(options: { config: Config; memory: MemoryTier; s3: S3Tier; resolver: Resolver; fetcher: OriginFetcher; metrics: Metrics; logger: Logger }) {
    this.#config = options.config;
    this.#memory = options.memory;
    this.#s3 = options.s3;
    this.#resolver = options.resolver;
    this.#fetcher = options.fetcher;
    this.#metrics = options.metrics;
    this.#log = options.logger;
    this.#format = formatKey(this.#config.YTDLP_FORMAT);
    this.#uploads = new Limiter(this.#config.UPLOAD_CONCURRENCY, this.#config.UPLOAD_QUEUE);
    this.#metrics.sources.uploadQueue = () => this.#uploads.queued;
    this.#touched = new LRUCache({ max: 10_000, ttl: Math.max(1, this.#config.ACCESS_TOUCH_INTERVAL) });
  }

  video(id: VideoId): VideoRef {
    return { id, format: this.#format };
  }

  get inFlight(): number {
    return this.#flights.size;
  }
  get uploadsQueued(): number {
    return this.#uploads.queued;
  }
  get uploadsRunning(): number {
    return this.#uploads.active;
  }

  /** The video's manifest and the tier it came from; a new video is resolved and its first slice requested. */
  async manifest(video: VideoRef): Promise<{ manifest: Manifest; tier: TierName }> {
    const inMemory = this.#memory.getManifest(video);
    if (inMemory) return { manifest: inMemory, tier: 'memory' };
    const key = videoKey(video);
    let run = this.#manifestRuns.get(key);
    if (!run) {
      run = this.#loadManifest(video).finally(() => this.#manifestRuns.delete(key));
      this.#manifestRuns.set(key, run);
    }
    return run;
  }

  async #loadManifest(video: VideoRef): Promise<{ manifest: Manifest; tier: TierName }> {
    if (this.#s3.available) {
      try {
        const stored = await this.#s3.getManifest(video, this.#config.SLICE_BYTES);
        if (stored) {
          this.#memory.putManifest(stored);
          return { manifest: stored, tier: 's3' };
        }
      } catch (error) {
        this.#log.warn({ videoId: video.id, err: error }, 'S3 manifest read failed; using the origin');
      }
    }
    return { manifest: await this.#manifestFromOrigin(video), tier: 'origin' };
  }

  /** Resolves the video and starts its first slice; the first response tells size, type and version. */
  async #manifestFromOrigin(video: VideoRef): Promise<Manifest> {
    const resolution = await this.#resolver.resolve(video.id);
    const flight = new SliceFlight(undefined);
    flight.pin();
    const facts = new Promise<OriginFacts>((resolve, reject) => {
      this.#runFlight(video, undefined, 0, flight, resolve).then(() => {
        if (flight.state === 'failed') reject(flight.error);
      });
    });
    const { size, contentType, lmt } = await facts;
    const duration = resolution.duration;
    const manifest = createManifest(video, {
      contentType,
      size,
      duration,
      lmt,
      sliceBytes: this.#config.SLICE_BYTES,
      headSlices: this.#headSlices(size, duration),
    });
    flight.etag = manifest.etag;
    this.#memory.putManifest(manifest);
    return manifest;
  }

  #headSlices(size: number, duration: number | undefined): number {
    const config = this.#config;
    return headSliceCount({ size, sliceBytes: config.SLICE_BYTES, duration, headSeconds: config.HEAD_SECONDS, headBytes: config.HEAD_BYTES, full: config.PERSIST === 'full' });
  }

  #isPersisted(manifest: Manifest, index: number): boolean {
    let set = this.#persistedSets.get(manifest);
    if (!set) this.#persistedSets.set(manifest, (set = new Set(manifest.persisted)));
    return set.has(index);
  }

  /** What X-Cache-Status a read of bytes [start, end] will earn, decided before headers are sent. */
  plan(manifest: Manifest, manifestTier: TierName, start: number, end: number): CacheStatus {
    if (manifestTier === 'origin') return 'MISS';
    let s3 = manifestTier === 's3';
    for (let index = Math.floor(start / manifest.sliceBytes); index <= Math.floor(end / manifest.sliceBytes); index++) {
      if (this.#memory.hasSlice(manifest, index)) continue;
      if (!this.#isPersisted(manifest, index) || !this.#s3.available) return 'MISS';
      s3 = true;
    }
    return s3 ? 'HIT-S3' : 'HIT';
  }

  #open(video: VideoRef, manifest: Manifest, index: number): SliceHandle {
    const bytes = this.#memory.getSlice(manifest, index);
    if (bytes) return { tier: 'memory', bytes };
    const key = `${videoKey(video)}/${index}`;
    let flight = this.#flights.get(key);
    if (flight && flight.state === 'running' && !flight.aborted && (flight.etag === undefined || flight.etag === manifest.etag)) {
      this.#metrics.flightJoins.inc();
    } else {
      flight = new SliceFlight(sliceBounds(manifest, index).length);
      flight.etag = manifest.etag;
      void this.#runFlight(video, manifest, index, flight);
    }
    // Head slices not yet in S3 complete even if every reader leaves: they are to be persisted.
    if (index < manifest.headSlices && !this.#isPersisted(manifest, index)) flight.pin();
    flight.hold();
    return { flight };
  }

  /**
   * Fills a flight: from S3 when the manifest says the slice is there, else (or
   * when S3 fails, from the byte it reached) from the origin. `manifest` is
   * undefined for a new video's first slice, whose facts go to `onFacts`.
   */
  async #runFlight(video: VideoRef, manifest: Manifest | undefined, index: number, flight: SliceFlight, onFacts?: (facts: OriginFacts) => void): Promise<void> {
    const key = `${videoKey(video)}/${index}`;
    this.#flights.set(key, flight);
    const signal = flight.controller.signal;
    const push = (chunk: Buffer) => flight.push(chunk);
    try {
      if (manifest && this.#isPersisted(manifest, index) && this.#s3.available) {
        try {
          if (await this.#s3.streamSlice(manifest, index, 0, push, signal)) return flight.finish();
          // Listed but gone (pruned, or replaced by another version): stop claiming it until it is uploaded again.
          this.#forgetPersisted(manifest, index);
        } catch (error) {
          if (signal.aborted) throw error;
          this.#log.warn({ videoId: video.id, index, err: error }, 'S3 slice read failed; continuing from the origin');
        }
      }
      flight.tier = 'origin';
      const sliceBytes = this.#config.SLICE_BYTES;
      const start = index * sliceBytes + flight.received;
      const end = manifest ? sliceBounds(manifest, index).end : (index + 1) * sliceBytes - 1;
      const expected = manifest ? { size: manifest.size, lmt: manifest.lmt } : undefined;
      await this.#fetcher.fetch(video.id, start, end, {
        push,
        onFacts: (facts) => {
          flight.length ??= Math.min(sliceBytes, facts.size - index * sliceBytes);
          onFacts?.(facts);
        },
      }, signal, expected);
      flight.finish();
    } catch (error) {
      if (signal.aborted) {
        this.#metrics.flightsAborted.inc();
      } else {
        this.#log.warn({ videoId: video.id, index, err: error }, 'slice fetch failed');
        if (isTubeError(error, 'ORIGIN_CHANGED')) void this.invalidate(video);
      }
      flight.fail(error);
    } finally {
      if (this.#flights.get(key) === flight) this.#flights.delete(key);
      if (flight.state === 'running') flight.fail(new Error('slice fetch ended without its bytes'));
      if (flight.state === 'done') this.#completed(video, index, flight);
    }
  }

  #forgetPersisted(manifest: Manifest, index: number): void {
    const current = this.#memory.getManifest(manifest);
    if (current?.etag === manifest.etag) this.#memory.putManifest({ ...current, persisted: current.persisted.filter((i) => i !== index) });
  }

  #completed(video: VideoRef, index: number, flight: SliceFlight): void {
    const manifest = this.#memory.getManifest(video);
    if (!manifest || manifest.etag !== flight.etag || !flight.bytes) return;
    let current = manifest;
    if (index === 0 && manifest.duration === undefined) {
      // No duration from yt-dlp: the MP4 header in the first slice tells how long "the head" is.
      const duration = mp4Duration(flight.bytes);
      if (duration) {
        current = { ...manifest, duration, headSlices: this.#headSlices(manifest.size, duration) };
        this.#memory.putManifest(current);
      }
    }
    this.#memory.putSlice(current, index, flight.bytes);
    if (flight.tier === 'origin' && index < current.headSlices) this.#persist(current, index, flight.bytes);
  }

  #persist(manifest: Manifest, index: number, bytes: Buffer): void {
    const task = this.#s3.available
      ? this.#uploads.tryRun(async () => {
          // Queued while S3 was up: skip it if S3 failed meanwhile or the service is closing.
          if (this.#closing || !this.#s3.available) return void this.#metrics.uploadsDropped.inc();
          try {
            await this.#s3.putSlice(manifest, index, bytes);
            this.#metrics.uploads.inc({ outcome: 'ok' });
            await this.#commitPersisted(manifest, index);
          } catch (error) {
            this.#metrics.uploads.inc({ outcome: 'error' });
            this.#log.warn({ videoId: manifest.id, index, err: error }, 'slice upload failed');
          }
        })
      : undefined;
    if (!task) this.#metrics.uploadsDropped.inc();
  }

  /** Records uploaded slices in the manifest, in memory and in S3; concurrent completions share one write. */
  async #commitPersisted(manifest: Manifest, index: number): Promise<void> {
    const key = videoKey(manifest);
    const pending = this.#pendingPersisted.get(key);
    if (pending) {
      pending.indexes.add(index);
      return;
    }
    const batch = { manifest, indexes: new Set([index]) };
    this.#pendingPersisted.set(key, batch);
    try {
      while (batch.indexes.size > 0) {
        const indexes = [...batch.indexes];
        batch.indexes.clear();
        const inMemory = this.#memory.getManifest(manifest);
        if (inMemory && inMemory.etag !== manifest.etag) return; // the video changed meanwhile
        const updated = withPersisted(inMemory ?? batch.manifest, indexes);
        batch.manifest = updated;
        this.#memory.putManifest(updated);
        await this.#s3.putManifest(updated);
      }
    } finally {
      this.#pendingPersisted.delete(key);
    }
  }

  /**
   * Bytes [start, end] of the video, lazily: a slice is opened only when the
   * reader reaches the one before it (one slice of read-ahead), so a client that
   * stops reading stops the upstream work behind it.
   */
  async *read(video: VideoRef, manifest: Manifest, start: number, end: number, signal: AbortSignal): AsyncGenerator<Buffer> {
    const sliceBytes = manifest.sliceBytes;
    const first = Math.floor(start / sliceBytes);
    const last = Math.floor(end / sliceBytes);
    let current: SliceHandle | undefined = this.#open(video, manifest, first);
    let ahead: SliceHandle | undefined;
    try {
      for (let index = first; index <= last; index++) {
        if (index < last) ahead = this.#open(video, manifest, index + 1);
        const handle: SliceHandle = current!;
        const base = index * sliceBytes;
        const from = Math.max(start, base) - base;
        const to = Math.min(end, base + sliceBytes - 1) - base;
        if (handle.bytes) {
          yield from === 0 && to === handle.bytes.length - 1 ? handle.bytes : handle.bytes.subarray(from, to + 1);
        } else {
          for await (const chunk of handle.flight.read(from, to, signal)) yield chunk;
        }
        const tier = handle.tier ?? handle.flight.tier;
        this.#metrics.bytesServed.inc({ tier }, to - from + 1);
        this.#metrics.sliceReads.inc({ tier });
        handle.flight?.release();
        current = ahead;
        ahead = undefined;
      }
    } finally {
      current?.flight?.release();
      ahead?.flight?.release();
    }
  }

  /** Warms the head of a video into memory and S3; shares fetches with readers. */
  async prefetch(video: VideoRef): Promise<Manifest> {
    const { manifest } = await this.manifest(video);
    let next = 0;
    const worker = async () => {
      while (next < manifest.headSlices) {
        const handle = this.#open(video, manifest, next++);
        if (!handle.flight) continue;
        handle.flight.pin();
        await handle.flight.settled();
        handle.flight.release();
        if (handle.flight.state === 'failed') throw handle.flight.error;
      }
    };
    await Promise.all(Array.from({ length: PREFETCH_PARALLEL }, worker));
    return manifest;
  }

  /** Records that the video was read, in S3, at most once per ACCESS_TOUCH_INTERVAL per process, off the request path. */
  touch(video: VideoRef): void {
    const key = videoKey(video);
    if (this.#touched.has(key) || !this.#s3.available) return;
    this.#touched.set(key, true);
    this.#s3.touch(video).catch((error: unknown) => this.#log.debug({ videoId: video.id, err: error }, 'access time not recorded'));
  }

  /** Forgets a video in memory and drops its S3 manifest (its slices are then ignored, and overwritten when fetched again). */
  async invalidate(video: VideoRef): Promise<void> {
    this.#memory.deleteVideo(video);
    try {
      await this.#s3.deleteKeys([this.#s3.keys.manifest(video)]);
    } catch (error) {
      this.#log.warn({ videoId: video.id, err: error }, 'could not drop the S3 manifest');
    }
  }

  /** Waits for background uploads (tests). */
  async idle(): Promise<void> {
    await this.#uploads.idle();
  }

  /**
   * Shutdown: uploads, queued and running, get up to `ms` to finish; then the
   * queue is dropped. A PUT abandoned when the process ends leaves nothing
   * visible: a slice or manifest PUT is all or nothing.
   */
  async close(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#uploads.idle(), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
    this.#closing = true;
  }
}

const videoKey = (video: VideoRef) => `${video.id}/${video.format}`;
