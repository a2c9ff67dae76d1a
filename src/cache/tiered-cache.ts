import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { isTubeError } from '../errors.js';
import { Limiter } from '../limiter.js';
import type { Metrics, TierName } from '../metrics.js';
import type { OriginFacts, OriginFetcher } from '../origin/fetcher.js';
import { mp4Duration } from '../origin/mp4.js';
import type { Resolver } from '../origin/resolver.js';
import type { FormatName } from '../origin/format.js';
import type { VideoId } from '../origin/video-id.js';
import type { VideoRef, VideoRequest } from './keys.js';
import { planHead } from './head.js';
import { createManifest, headSliceCount, headSliceIndexes, isHeadSlice, mergeManifest, sliceBounds, sliceCount, withPersisted, type Manifest } from './manifest.js';
import type { Done, EarlyLease, LeaseBoard } from './lease.js';
import type { PeerClient } from './peer-client.js';
import type { DiskTier } from './disk-tier.js';
import type { HeldSlice, MemoryTier } from './memory-tier.js';
import type { Charge } from './slice-budget.js';
import type { EarlySlice, StoreTier } from './store-tier.js';
import { SliceFlight } from './slice-flight.js';
import { encodeSlice, storedSliceLength } from './slice-codec.js';
import { SliceStream } from './slice-stream.js';
import { bodyOf, skipBytes } from './store-util.js';

export type CacheStatus = 'HIT' | 'HIT-DISK' | 'HIT-S3' | 'MISS';

/** A slice a reader holds (each with its own hold on the bytes' charge): bytes already in memory, a shared fetch in flight, or a pass-through stream. */
type SliceHandle = { tier: 'memory'; slice: HeldSlice; flight?: undefined } | { tier?: undefined; slice?: undefined; flight: SliceFlight | SliceStream };
/** The slice a read is on and the one it has opened ahead. */
type OpenSlices = { current: SliceHandle | undefined; ahead: SliceHandle | undefined };
/** A slice kept in memory or on its way there. */
type KeptHandle = { tier: 'memory'; slice: HeldSlice; flight?: undefined } | { tier?: undefined; slice?: undefined; flight: SliceFlight };

/** Where a slice's bytes will come from, decided once by `#locate` for both the X-Cache-Status plan and the read. */
type SliceSource =
  | { tier: 'memory'; slice: HeldSlice; flight?: undefined }
  /** A fetch already running: its tier is where it reads from (origin once any byte came from there). */
  | { tier: Exclude<TierName, 'memory'>; slice?: undefined; flight: SliceFlight }
  /** A new fetch, from the store or the origin. */
  | { tier: Exclude<TierName, 'memory'>; slice?: undefined; flight?: undefined };

/** Set by a lease claim that found another node's slice: read from shared/ (so a corrupt one is deleted there), or streamed from the holder (nothing stored to delete). */
type ReadFrom = { shared: boolean; holder: boolean };

const STATUS: Record<TierName, CacheStatus> = { memory: 'HIT', disk: 'HIT-DISK', s3: 'HIT-S3', origin: 'MISS' };
/** A request's status is that of its worst slice: one origin slice makes it a MISS. */
const RANK: Record<TierName, number> = { memory: 0, disk: 1, s3: 1, origin: 2 };

/** Uploaded head slices read back by prefetch at most this many at a time. */
const PREFETCH_PARALLEL = 2;
/** Waits for slice budget that only the bytes' release ends (prefetch and a new video's first slice have no reader to stream to). */
const NO_DEADLINE = new AbortController().signal;
/** Claims made again for a slice whose holder failed before sending a byte, before this node fetches it alone. */
const HOLDER_RECLAIMS = 2;
/** How long a video counts as fetched by another node after this node last followed one of its leases. */
const OTHERS_FETCHING_MS = 60_000;
/** How long a slice GET started beside its manifest's waits for the read it was started for. */
const EARLY_SLICE_MS = 1_000;

/**
 * The read-through cache: memory → disk tier (DISK_CACHE_DIR, when set) → store (disk or S3) → origin, slice by slice. One fetch per
 * slice per process (readers join it), one slice of read-ahead, head slices
 * persisted to the store in the background through a bounded upload queue.
 */
export class TieredCache {
  readonly #config: Config;
  readonly #memory: MemoryTier;
  readonly #store: StoreTier;
  readonly #disk: DiskTier | undefined;
  readonly #leases: LeaseBoard;
  /** Streams slices from the nodes holding their leases (PEER_URL); undefined without it. */
  readonly #peers: PeerClient | undefined;
  readonly #resolver: Resolver;
  readonly #fetcher: OriginFetcher;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #flights = new Map<string, SliceFlight>();
  /** Slice GETs started beside their manifest's (#keepEarly), by video and index, until a read opens them. */
  readonly #early = new Map<string, { early: EarlySlice; timer: NodeJS.Timeout }>();
  readonly #manifestRuns = new Map<string, Promise<{ manifest: Manifest; tier: TierName }>>();
  readonly #uploads: Limiter;
  readonly #pendingPersisted = new Map<string, { manifest: Manifest; indexes: Set<number>; dirty: boolean }>();
  readonly #headPlans = new Map<string, Promise<void>>();
  readonly #touched: LRUCache<string, true>;
  readonly #touches = new Set<Promise<void>>();
  /** Early manifest writes and uploads of leased slices: never dropped, waited for by idle(). */
  readonly #sharing = new Set<Promise<void>>();
  /** Versions dropped because the origin's bytes changed: a stored copy (not yet deleted) or a late commit must not bring them back. */
  readonly #invalidated = new LRUCache<string, true>({ max: 10_000 });
  readonly #persistedSets = new WeakMap<Manifest, Set<number>>();
  /** Videos the store had no manifest for, lately (STORE_ABSENT_TTL): a retry skips the store's round trip; this node's own manifest write forgets the entry. */
  readonly #absent: LRUCache<string, true> | undefined;
  /** Videos another node was fetching lately (a claim found its manifest or slice): their new leases are left to it a moment (#claim). */
  readonly #othersFetching = new LRUCache<string, true>({ max: 10_000, ttl: OTHERS_FETCHING_MS });
  #closing = false;

  constructor(options: { config: Config; memory: MemoryTier; store: StoreTier; disk?: DiskTier; leases: LeaseBoard; peers?: PeerClient; resolver: Resolver; fetcher: OriginFetcher; metrics: Metrics; logger: Logger }) {
    this.#config = options.config;
    this.#memory = options.memory;
    this.#store = options.store;
    this.#disk = options.disk;
    this.#leases = options.leases;
    this.#peers = options.peers;
    this.#resolver = options.resolver;
    this.#fetcher = options.fetcher;
    this.#metrics = options.metrics;
    this.#log = options.logger;
    this.#uploads = new Limiter(this.#config.UPLOAD_CONCURRENCY, this.#config.UPLOAD_QUEUE);
    this.#metrics.sources.uploadQueue = () => this.#uploads.queued;
    this.#touched = new LRUCache({ max: 10_000, ttl: Math.max(1, this.#config.ACCESS_TOUCH_INTERVAL) });
    this.#absent = this.#config.STORE_ABSENT_TTL ? new LRUCache({ max: 10_000, ttl: this.#config.STORE_ABSENT_TTL }) : undefined;
  }

  /** The video in a configured format (the default when none is named); `format` passed the edge check (parseFormatParam). */
  video(id: VideoId, format: FormatName = this.#config.FORMATS.default): VideoRequest {
    return { id, format, selector: this.#config.FORMATS.selectors.get(format)! };
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

  /**
   * The video's manifest and the tier it came from; a new video is resolved
   * and its first slice requested. `firstByte`: where the caller will read
   * from, when known — the slice there is asked of the store beside the
   * manifest (one round trip for an S3 hit, not two).
   */
  async manifest(video: VideoRequest, firstByte?: number): Promise<{ manifest: Manifest; tier: TierName }> {
    const inMemory = this.#memory.getManifest(video);
    if (inMemory) return { manifest: inMemory, tier: 'memory' };
    const key = videoKey(video);
    let run = this.#manifestRuns.get(key);
    if (!run) {
      run = this.#loadManifest(video, firstByte).finally(() => this.#manifestRuns.delete(key));
      this.#manifestRuns.set(key, run);
    }
    return run;
  }

  async #loadManifest(video: VideoRequest, firstByte: number | undefined): Promise<{ manifest: Manifest; tier: TierName }> {
    // The disk first: with S3 down or frozen, what this node holds is served without waiting on it.
    const onDisk = await this.#disk?.getManifest(video, this.#config.SLICE_BYTES);
    if (onDisk && !this.#invalidated.has(versionKey(onDisk))) {
      this.#memory.putManifest(onDisk);
      return { manifest: onDisk, tier: 'disk' };
    }
    let lease: EarlyLease | undefined;
    if (this.#store.available && !this.#absent?.has(videoKey(video))) {
      const index = firstByte === undefined ? undefined : Math.floor(firstByte / this.#config.SLICE_BYTES);
      const early = index === undefined ? undefined : this.#store.earlySlice(video, index);
      // A new video's first lease is asked beside its manifest: a cold miss then waits one round trip before the origin, not two.
      lease = this.#leases.begin(this.#store.keys.lease(video, 0));
      try {
        const stored = await this.#storedManifest(video);
        if (early) this.#keepEarly(stored, index!, early);
        if (stored) {
          this.#disk?.writeManifest(stored);
          if (lease) void this.#leases.drop(lease);
          return { manifest: stored, tier: this.#store.name };
        }
        this.#absent?.set(videoKey(video), true);
      } catch (error) {
        early?.cancel();
        this.#log.warn({ videoId: video.id, err: error }, 'store manifest read failed; using the origin');
      }
    }
    return this.#manifestFromOrigin(video, lease);
  }

  /** A slice GET started beside its manifest's: kept for the read about to open it when the store is where that read will look, else let go. */
  #keepEarly(manifest: Manifest | undefined, index: number, early: EarlySlice): void {
    if (!manifest || index >= sliceCount(manifest) || this.#locate(manifest, index, false).tier !== this.#store.name) return early.cancel();
    const key = `${videoKey(manifest)}/${index}`;
    this.#takeEarly(manifest, index)?.cancel();
    // The read opens it at once; one that never comes (the client left) lets it go.
    const timer = setTimeout(() => this.#early.get(key)?.early === early && this.#takeEarly(manifest, index)?.cancel(), EARLY_SLICE_MS).unref();
    this.#early.set(key, { early, timer });
  }

  #takeEarly(manifest: Pick<Manifest, 'id' | 'format'>, index: number): EarlySlice | undefined {
    const key = `${videoKey(manifest)}/${index}`;
    const kept = this.#early.get(key);
    if (!kept) return undefined;
    this.#early.delete(key);
    clearTimeout(kept.timer);
    return kept.early;
  }

  async #storedManifest(video: VideoRequest): Promise<Manifest | undefined> {
    const stored = await this.#store.getManifest(video, this.#config.SLICE_BYTES);
    if (!stored || this.#invalidated.has(versionKey(stored))) return undefined;
    this.#memory.putManifest(stored);
    return stored;
  }

  /**
   * Resolves the video and starts its first slice; the first response tells
   * size, type and version. Under the first slice's lease (src/cache/lease.ts):
   * a node that loses it waits for the holder's manifest instead of running yt-dlp.
   */
  async #manifestFromOrigin(video: VideoRequest, early?: EarlyLease): Promise<{ manifest: Manifest; tier: TierName }> {
    const claim = await this.#leases.claim(this.#store.keys.lease(video, 0), () => this.#storedManifest(video), { early });
    if (claim.found) {
      this.#othersFetching.set(videoKey(video), true);
      return { manifest: claim.found, tier: this.#store.name };
    }
    const resolution = await this.#resolver.resolve(video).catch((error: unknown) => {
      void claim.lease?.release();
      throw error;
    });
    // The length is unknown until the first response: a whole slice is charged, the rest given back at the first byte.
    const charge = await this.#memory.budget.charge(this.#config.SLICE_BYTES, NO_DEADLINE, true).catch((error: unknown) => {
      void claim.lease?.release();
      throw error;
    });
    const flight = new SliceFlight(undefined, 'origin', charge);
    flight.lease = claim.lease;
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
    this.#disk?.writeManifest(manifest);
    if (claim.lease) {
      // Written before any slice lands, so other nodes learn size, type and version without yt-dlp.
      this.#share(this.#writeManifest(manifest));
      this.#shareSlice(manifest, 0, flight);
    }
    return { manifest, tier: 'origin' };
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
    let worst: TierName = manifestTier;
    for (let index = Math.floor(start / manifest.sliceBytes); index <= Math.floor(end / manifest.sliceBytes); index++) {
      const { tier } = this.#locate(manifest, index, false);
      if (RANK[tier] > RANK[worst]) worst = tier;
    }
    return STATUS[worst];
  }

  /**
   * The one decision of where slice `index` comes from: memory, a fetch already
   * running (joined), the disk tier when it holds the slice, the store when the
   * manifest lists the slice and the store is up, else the origin. `touch` refreshes the memory entry's recency (a read,
   * not a plan).
   */
  #locate(manifest: Manifest, index: number, touch: boolean): SliceSource {
    const slice = touch ? this.#memory.getSlice(manifest, index) : this.#memory.peekSlice(manifest, index);
    if (slice) return { tier: 'memory', slice };
    const flight = this.#flights.get(`${videoKey(manifest)}/${index}`);
    if (flight && flight.state === 'running' && !flight.aborted && (flight.etag === undefined || flight.etag === manifest.etag)) return { tier: flight.tier, flight };
    if (this.#disk?.has(manifest, index)) return { tier: 'disk' };
    return { tier: this.#inStore(manifest, index) ? this.#store.name : 'origin' };
  }

  #inStore(manifest: Manifest, index: number): boolean {
    return this.#isPersisted(manifest, index) && this.#store.available;
  }

  /**
   * Slice `index` for a reader starting `from` bytes into it: from memory, a
   * fetch to join, a new fetch that keeps the slice, or, when the budget has
   * no room for the whole slice, a stream through to this reader alone.
   */
  async #open(video: VideoRequest, manifest: Manifest, index: number, from: number): Promise<SliceHandle> {
    const kept = await this.#acquire(video, manifest, index);
    if (kept) return kept;
    const source = this.#locate(manifest, index, false);
    const stream: SliceStream = new SliceStream(sliceBounds(manifest, index).length, source.tier === 'memory' ? 'origin' : source.tier, this.#memory.budget, () => {
      this.#metrics.slicesPassedThrough.inc();
      void this.#runFlight(video, manifest, index, stream);
    });
    stream.etag = manifest.etag;
    stream.skipTo(from);
    stream.hold();
    return { flight: stream };
  }

  /**
   * Slice `index` from memory, a fetch to join, or a new fetch charged to the
   * budget; undefined when the budget has no room, unless `wait` is given
   * (then it waits for room).
   */
  async #acquire(video: VideoRequest, manifest: Manifest, index: number, wait?: AbortSignal): Promise<KeptHandle | undefined> {
    const length = sliceBounds(manifest, index).length;
    let source = this.#locate(manifest, index, true);
    let charge: Charge | undefined;
    if (!source.slice && !source.flight) {
      charge = wait ? await this.#memory.budget.charge(length, wait, true) : this.#memory.budget.tryCharge(length);
      if (!charge) return undefined;
      // Another reader may have started the slice while this one waited.
      if (wait) source = this.#locate(manifest, index, true);
    }
    if (source.slice) {
      charge?.release();
      return { tier: 'memory', slice: { bytes: source.slice.bytes, charge: source.slice.charge.hold() } };
    }
    let flight = source.flight;
    if (flight) {
      charge?.release();
      this.#metrics.flightJoins.inc();
    } else {
      flight = new SliceFlight(length, source.tier, charge!);
      flight.etag = manifest.etag;
      void this.#runFlight(video, manifest, index, flight);
    }
    // Head slices not yet stored complete even if every reader leaves: they are to be persisted.
    if (isHeadSlice(manifest, index) && !this.#isPersisted(manifest, index)) flight.pin();
    flight.hold();
    return { flight };
  }

  /**
   * Fills a flight from where `#locate` said (its `tier`): the store, and when
   * the store fails, misses or holds a corrupt chunk, the origin from the byte
   * the store reached (every byte pushed was checked). `manifest` is undefined
   * for a new video's first slice, whose facts go to `onFacts`.
   */
  async #runFlight(video: VideoRequest, manifest: Manifest | undefined, index: number, flight: SliceFlight | SliceStream, onFacts?: (facts: OriginFacts) => void): Promise<void> {
    const key = `${videoKey(video)}/${index}`;
    // A stream serves one reader from where it is: nobody joins it.
    if (flight instanceof SliceFlight) this.#flights.set(key, flight);
    const signal = flight.controller.signal;
    const push = (chunk: Buffer) => flight.push(chunk);
    try {
      // 'disk' is the disk tier when there is one; without one (no S3) the store is the disk store.
      if (manifest && flight.tier === 'disk' && this.#disk) {
        if (await this.#disk.fill(manifest, index, push, signal)) return flight.finish();
        flight.tier = this.#inStore(manifest, index) ? this.#store.name : 'origin';
      }
      if (manifest && (await this.#fillFromStore(video, manifest, index, flight, push))) return flight.finish();
      flight.tier = 'origin';
      if (manifest && flight instanceof SliceFlight && flight.lease) this.#shareSlice(manifest, index, flight);
      const sliceBytes = this.#config.SLICE_BYTES;
      const start = index * sliceBytes + flight.received;
      const end = manifest ? sliceBounds(manifest, index).end : (index + 1) * sliceBytes - 1;
      const expected = manifest ? { size: manifest.size, lmt: manifest.lmt } : undefined;
      await this.#fetcher.fetch(video, start, end, {
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
        if (isTubeError(error, 'ORIGIN_CHANGED')) void this.invalidate(video, flight.etag);
      }
      flight.fail(error);
    } finally {
      if (this.#flights.get(key) === flight) this.#flights.delete(key);
      if (flight.state === 'running') flight.fail(new Error('slice fetch ended without its bytes'));
      if (flight instanceof SliceFlight) {
        if (flight.state === 'done') this.#completed(video, index, flight);
        flight.close();
        // Not shared (failed, abandoned, or of a changed version): a waiting node takes over at once.
        void flight.lease?.release();
      }
    }
  }

  /**
   * Fills a flight from the store, or from another node's copy under the slice's lease (#claim);
   * true once the slice is complete. False leaves the rest to the origin, from the byte reached:
   * the slice is missing, its read failed, or it was corrupt (and is dropped).
   */
  async #fillFromStore(video: VideoRequest, manifest: Manifest, index: number, flight: SliceFlight | SliceStream, push: (chunk: Buffer) => void | Promise<void>): Promise<boolean> {
    const signal = flight.controller.signal;
    for (let reclaims = 0; ; reclaims++) {
      // Where the slice is read from: the head's place, or shared/ when another node's lease put it there, or the holder.
      const from: ReadFrom = { shared: false, holder: false };
      try {
        // A pass-through stream keeps no bytes to upload, so it never takes a lease.
        const slice =
          flight.tier !== 'origin' ? await this.#store.openSlice(manifest, index, signal, false, 'get-slice', this.#takeEarly(manifest, index)) : flight instanceof SliceFlight ? await this.#claim(video, manifest, index, flight, from) : undefined;
        if (!slice) {
          // Listed but gone (pruned, or replaced by another version): stop claiming it until it is uploaded again.
          if (flight.tier !== 'origin') this.#forgetPersisted(manifest, index);
          return false;
        }
        flight.tier = this.#store.name;
        // After a disk-tier file failed its check part-way, from the byte it reached.
        for await (const chunk of skipBytes(slice, flight.received)) await push(chunk);
        return true;
      } catch (error) {
        if (signal.aborted) throw error;
        // A holder that failed before its first byte (its own origin fetch failed: it releases the lease): claim again rather than fetch alone.
        if (from.holder && flight.received === 0 && reclaims < HOLDER_RECLAIMS && !isTubeError(error, 'SLICE_CORRUPT')) {
          flight.tier = 'origin';
          continue;
        }
        if (isTubeError(error, 'SLICE_CORRUPT')) await this.#dropCorrupt(manifest, index, error, from);
        else this.#log.warn({ videoId: video.id, index, err: error, fromHolder: from.holder }, 'slice read failed; continuing from the origin');
        return false;
      }
    }
  }

  /**
   * Another node's copy of this slice when it holds the slice's lease (streamed from it while it
   * fetches, with PEER_URL, else its upload); else this node takes the lease (or fetches alone).
   */
  async #claim(video: VideoRequest, manifest: Manifest, index: number, flight: SliceFlight, from: ReadFrom): Promise<AsyncGenerator<Buffer> | undefined> {
    const signal = flight.controller.signal;
    // Beyond the head a holder shares the slice under shared/ (#shareSlice); a done mark says where it did.
    const open = (done: Done | undefined) => {
      from.shared = done?.shared ?? !isHeadSlice(manifest, index);
      from.holder = false;
      return this.#store.openSlice(manifest, index, signal, from.shared, 'poll-slice');
    };
    const peers = this.#peers;
    const fromHolder =
      peers &&
      ((holder: string) => {
        from.holder = true;
        return peers.open(holder, manifest, index, signal);
      });
    // While another node fetches the video, a node without its URL leaves a new lease a moment to that node: else its read-ahead may win the race and run yt-dlp.
    const defer = !this.#resolver.has(video) && this.#othersFetching.has(videoKey(video));
    const claim = await this.#leases.claim(this.#store.keys.lease(manifest, index), open, { signal, fromHolder, defer });
    flight.lease = claim.lease;
    if (claim.found) this.#othersFetching.set(videoKey(video), true);
    return claim.found;
  }

  /**
   * A slice that failed its digest: counted, deleted, and no longer claimed; the origin's bytes replace it (#completed uploads them).
   * One streamed from its lease holder is only counted: nothing of it is stored.
   */
  async #dropCorrupt(manifest: Manifest, index: number, error: unknown, { shared, holder }: ReadFrom): Promise<void> {
    this.#metrics.integrityFailures.inc({ store: holder ? 'peer' : this.#store.name });
    if (holder) return void this.#log.error({ videoId: manifest.id, index, err: error }, 'slice streamed from its lease holder is corrupt; reading the origin');
    this.#log.error({ videoId: manifest.id, index, err: error }, 'stored slice is corrupt; dropping it and reading the origin');
    this.#forgetPersisted(manifest, index);
    await this.#store.deleteKeys([shared ? this.#store.keys.shared(manifest, index) : this.#store.keys.slice(manifest, index)]).catch((failure: unknown) => this.#log.warn({ videoId: manifest.id, index, err: failure }, 'could not delete the corrupt slice'));
  }

  #forgetPersisted(manifest: Manifest, index: number): void {
    const current = this.#memory.getManifest(manifest);
    if (current?.etag === manifest.etag) this.#memory.putManifest({ ...current, persisted: current.persisted.filter((i) => i !== index) });
  }

  #completed(video: VideoRequest, index: number, flight: SliceFlight): void {
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
    const slice = { bytes: flight.bytes, charge: flight.charge };
    this.#memory.putSlice(current, index, slice.bytes, slice.charge);
    if (this.#disk && flight.tier !== 'disk') {
      // The queued write keeps the bytes charged (and out of the Buffer pool) until it ends.
      const charge = slice.charge.hold();
      this.#disk.writeSlice(current, index, slice.bytes, () => charge.release());
    }
    if (index === 0 && current.head === undefined && this.#config.PERSIST === 'head') this.#planHead(video, current, slice);
    // A leased slice was streamed to the store as it arrived (#shareSlice): to slices/ when it was a head slice then.
    if (flight.tier === 'origin' && isHeadSlice(current, index) && flight.sharedTo !== 'slices') this.#persist(current, index, slice);
  }

  /**
   * Streams a leased slice to the store while it is fetched, for the nodes
   * waiting on it: outside the upload queue's bound (never dropped), complete
   * in the store within a round trip of its last byte. The PUT opens at the
   * slice's first byte (no S3 connection held while the origin connects); a
   * fetch that fails takes the upload with it (nothing is stored) and the
   * lease is released.
   */
  #shareSlice(manifest: Manifest, index: number, flight: SliceFlight): void {
    const letGo = flight.keepBytes();
    if (!letGo) return;
    const head = isHeadSlice(manifest, index);
    flight.sharedTo = head ? 'slices' : 'shared';
    const ended = new AbortController();
    const stream = async () => {
      await flight.started(ended.signal);
      if (flight.state === 'failed') throw flight.error;
      const { length } = sliceBounds(manifest, index);
      await this.#store.putSlice(manifest, index, flight.read(0, length - 1, ended.signal), !head, ended.signal);
    };
    const upload = flight
      .lease!.share(stream, !head)
      .then(
        async (uploaded) => {
          if (!uploaded) return;
          this.#metrics.uploads.inc({ outcome: 'ok' });
          if (head) await this.#commitPersisted(manifest, [index]);
        },
        (error: unknown) => {
          // The fetch failed and took its upload with it: logged where the fetch failed.
          if (flight.state === 'failed') return;
          this.#metrics.uploads.inc({ outcome: 'error' });
          this.#log.warn({ videoId: manifest.id, index, err: error }, 'leased slice upload failed; lease released');
        },
      )
      .finally(() => {
        ended.abort();
        letGo();
      });
    this.#share(upload);
  }

  /** Background work for the other nodes (the early manifest, leased uploads), waited for by idle(). */
  #share(work: Promise<void>): void {
    const tracked = work.catch((error: unknown) => this.#log.warn({ err: error }, 'manifest not written for the other nodes')).finally(() => this.#sharing.delete(tracked));
    this.#sharing.add(tracked);
  }

  /** The manifest in the store: a compare-and-swap with conditional writes, merged with what other nodes recorded. */
  #writeManifest(manifest: Manifest): Promise<void> {
    this.#absent?.delete(videoKey(manifest));
    const change = (stored: Manifest | undefined) => (stored?.etag === manifest.etag ? mergeManifest(stored, manifest) : manifest);
    return this.#store.updateManifest(manifest, this.#config.SLICE_BYTES, change, this.#leases.mode === 'leases');
  }

  /** Replaces the estimated head with the slices the MP4 index names (src/cache/head.ts), once per video. */
  #planHead(video: VideoRequest, manifest: Manifest, slice: HeldSlice): void {
    const key = videoKey(video);
    if (this.#headPlans.has(key)) return;
    const first = slice.bytes;
    // The plan reads the first slice for as long as it runs.
    slice.charge.hold();
    const config = this.#config;
    const fetchRange = async (start: number, end: number) => {
      // Copied as they come: a chunk read is valid only until the next is asked for (its Buffer may then be reused).
      const bytes = Buffer.allocUnsafe(end - start);
      let at = 0;
      for await (const chunk of this.read(video, manifest, start, end - 1, new AbortController().signal)) at += chunk.copy(bytes, at);
      return bytes;
    };
    const run = planHead({ first, size: manifest.size, duration: manifest.duration, sliceBytes: manifest.sliceBytes, headSeconds: config.HEAD_SECONDS, headBytes: config.HEAD_BYTES, fetchRange })
      .then(({ reason, ...head }) => {
        if (reason) this.#log.info({ videoId: video.id, reason }, 'head estimated: the MP4 index could not be used');
        const current = this.#memory.getManifest(video);
        if (!current || current.etag !== manifest.etag) return;
        const updated = { ...current, head };
        this.#memory.putManifest(updated);
        // Head slices that completed before the plan was known (read-ahead, the moov tail) are persisted now.
        const late = head.slices.filter((index) => index >= current.headSlices && !this.#isPersisted(updated, index));
        for (const index of late) {
          const held = this.#memory.getSlice(updated, index);
          if (held) this.#persist(updated, index, held);
        }
        if (this.#store.available) return this.#commitPersisted(updated, []);
      })
      .catch((error: unknown) => this.#log.warn({ videoId: video.id, err: error }, 'head plan not recorded'))
      .finally(() => {
        slice.charge.release();
        this.#headPlans.delete(key);
      });
    this.#headPlans.set(key, run);
  }

  /** Queues a slice for upload; the queue holds the bytes' charge until the upload ends. */
  #persist(manifest: Manifest, index: number, slice: HeldSlice): void {
    const charge = slice.charge.hold();
    const task = this.#store.available
      ? this.#uploads.tryRun(async () => {
          try {
            // Queued while the store was up: skip it if the store failed meanwhile or the service is closing.
            if (this.#closing || !this.#store.available) return void this.#metrics.uploadsDropped.inc();
            await this.#store.putSlice(manifest, index, slice.bytes);
            this.#metrics.uploads.inc({ outcome: 'ok' });
            await this.#commitPersisted(manifest, [index]);
          } catch (error) {
            this.#metrics.uploads.inc({ outcome: 'error' });
            this.#log.warn({ videoId: manifest.id, index, err: error }, 'slice upload failed');
          } finally {
            charge.release();
          }
        })
      : undefined;
    if (!task) {
      charge.release();
      this.#metrics.uploadsDropped.inc();
    }
  }

  /**
   * Records uploaded slices (none: the head plan) in the manifest, in memory
   * and in the store; concurrent completions share one write.
   */
  async #commitPersisted(manifest: Manifest, indexes: number[]): Promise<void> {
    const key = videoKey(manifest);
    const pending = this.#pendingPersisted.get(key);
    if (pending) {
      for (const index of indexes) pending.indexes.add(index);
      pending.dirty = true;
      return;
    }
    const batch = { manifest, indexes: new Set(indexes), dirty: true };
    this.#pendingPersisted.set(key, batch);
    try {
      while (batch.dirty) {
        const indexes = [...batch.indexes];
        batch.indexes.clear();
        batch.dirty = false;
        const inMemory = this.#memory.getManifest(manifest);
        if ((inMemory && inMemory.etag !== manifest.etag) || this.#invalidated.has(versionKey(manifest))) return; // the video changed meanwhile
        const updated = withPersisted(inMemory ?? batch.manifest, indexes);
        batch.manifest = updated;
        this.#memory.putManifest(updated);
        this.#disk?.writeManifest(updated);
        await this.#writeManifest(updated);
      }
    } finally {
      this.#pendingPersisted.delete(key);
    }
  }

  /**
   * Bytes [start, end] of the video, lazily: a slice is opened only when the
   * reader reaches the one before it (one slice of read-ahead), so a client that
   * stops reading stops the upstream work behind it. A chunk is valid until the
   * next is asked for: the slice or pass-through Buffer it views may be reused then.
   */
  async *read(video: VideoRequest, manifest: Manifest, start: number, end: number, signal: AbortSignal): AsyncGenerator<Buffer> {
    const sliceBytes = manifest.sliceBytes;
    const first = Math.floor(start / sliceBytes);
    const last = Math.floor(end / sliceBytes);
    // Handles live in this object, not in locals: a suspended generator keeps its locals, and a local still
    // naming a slice let go would keep its Buffer alive, uncounted, for as long as the response lasts.
    const open: OpenSlices = { current: undefined, ahead: undefined };
    open.current = await this.#open(video, manifest, first, start - first * sliceBytes);
    try {
      for (let index = first; index <= last; index++) {
        const [from, to] = spanIn(sliceBytes, index, start, end);
        yield* this.#readSlice(video, manifest, index, index < last, from, to, open, signal);
        const tier = open.current!.tier ?? open.current!.flight.tier;
        this.#metrics.bytesServed.inc({ tier, format: video.format }, to - from + 1);
        this.#metrics.sliceReads.inc({ tier });
        letGo(open.current!);
        open.current = open.ahead;
        open.ahead = undefined;
      }
    } finally {
      if (open.current) letGo(open.current);
      if (open.ahead) letGo(open.ahead);
    }
  }

  /** Bytes [from, to] of `open.current`, slice `index`; opens the next slice (`more`) into `open.ahead` once these bytes are on their way. */
  async *#readSlice(video: VideoRequest, manifest: Manifest, index: number, more: boolean, from: number, to: number, open: OpenSlices, signal: AbortSignal): AsyncGenerator<Buffer> {
    const handle = open.current!;
    if (handle.slice) {
      if (more) open.ahead = await this.#open(video, manifest, index + 1, 0);
      const bytes = handle.slice.bytes;
      yield from === 0 && to === bytes.length - 1 ? bytes : bytes.subarray(from, to + 1);
      return;
    }
    for await (const chunk of handle.flight.read(from, to, signal)) {
      yield chunk;
      // Opened once this slice's first bytes are out: a cold first byte does not wait for the read-ahead's request.
      if (more && !open.ahead) open.ahead = await this.#open(video, manifest, index + 1, 0);
    }
  }

  /**
   * Bytes [start, end] as views of memory slices when memory holds every one
   * (the memory-hit fast path answers with them; `read` without its machinery),
   * counted as `read` counts them; undefined when any slice is elsewhere. `touch`:
   * a read (a GET), not a look (a HEAD). Each slice is held until `release`:
   * a slice Buffer let go may be reused by the next slice (slice-budget.ts),
   * so the caller releases only once the socket has written the views.
   */
  fromMemory(video: VideoRequest, manifest: Manifest, start: number, end: number, touch: boolean): { views: Buffer[]; release: () => void } | undefined {
    const sliceBytes = manifest.sliceBytes;
    const slices: HeldSlice[] = [];
    for (let index = Math.floor(start / sliceBytes); index <= Math.floor(end / sliceBytes); index++) {
      const slice = touch ? this.#memory.getSlice(manifest, index) : this.#memory.peekSlice(manifest, index);
      if (!slice) return undefined;
      slices.push(slice);
    }
    const views = slices.map((slice, at) => {
      const bytes = slice.bytes;
      const [from, to] = spanIn(sliceBytes, Math.floor(start / sliceBytes) + at, start, end);
      slice.charge.hold();
      if (touch) {
        this.#metrics.bytesServed.inc({ tier: 'memory', format: video.format }, to - from + 1);
        this.#metrics.sliceReads.inc({ tier: 'memory' });
      }
      return from === 0 && to === bytes.length - 1 ? bytes : bytes.subarray(from, to + 1);
    });
    const release = () => {
      for (const slice of slices) slice.charge.release();
    };
    return { views, release };
  }

  /**
   * For a node waiting on this node's lease (src/http/peer.ts): slice `index` of version `etag`
   * laid out as a stored slice (slice-codec.ts), from memory or from the fetch in flight as its
   * bytes arrive; undefined when this node has neither. The slice is held, as by any reader (a
   * fetch goes on for it), until `release`, which the caller calls once the response is over.
   */
  peerSlice(video: VideoRequest, index: number, etag: string, signal: AbortSignal): { length: number; body: AsyncGenerator<Buffer>; release: () => void } | undefined {
    const manifest = this.#memory.getManifest(video);
    if (manifest?.etag !== etag || index >= sliceCount(manifest)) return undefined;
    const source = this.#locate(manifest, index, false);
    let handle: SliceHandle;
    if (source.slice) handle = { tier: 'memory', slice: { bytes: source.slice.bytes, charge: source.slice.charge.hold() } };
    // Only a fetch under this node's lease: a flight still claiming (or following) would make a chain, or a node wait for itself.
    else if (source.flight?.lease) {
      source.flight.hold();
      handle = { flight: source.flight };
    } else return undefined;
    const identity = { etag, length: sliceBounds(manifest, index).length };
    const bytes = handle.slice ? bodyOf(handle.slice.bytes) : handle.flight.read(0, identity.length - 1, signal);
    let held = true;
    const release = () => {
      if (held) letGo(handle);
      held = false;
    };
    return { length: storedSliceLength(identity), body: encodeSlice(bytes, identity), release };
  }

  /** Warms the head of a video into memory and the store; shares fetches with readers. */
  async prefetch(video: VideoRequest): Promise<Manifest> {
    const { manifest } = await this.manifest(video);
    const warm = async (plan: Manifest, indexes: readonly number[]) => {
      let next = 0;
      await Promise.all(Array.from({ length: PREFETCH_PARALLEL }, () => worker(plan, indexes, () => next++)));
    };
    const worker = async (plan: Manifest, indexes: readonly number[], take: () => number) => {
      for (let at = take(); at < indexes.length; at = take()) {
        const handle = (await this.#acquire(video, plan, indexes[at]!, NO_DEADLINE))!;
        if (!handle.flight) {
          handle.slice.charge.release();
          continue;
        }
        handle.flight.pin();
        await handle.flight.settled();
        handle.flight.release();
        if (handle.flight.state === 'failed') throw handle.flight.error;
      }
    };
    // Slice 0 first: its bytes tell which slices the head is.
    await warm(manifest, [0]);
    await this.#headPlans.get(videoKey(video));
    const current = this.#memory.getManifest(video);
    const planned = current?.etag === manifest.etag ? current : manifest;
    await warm(planned, headSliceIndexes(planned).filter((index) => index !== 0));
    return planned;
  }

  /** Records that the video was read, in the store, at most once per ACCESS_TOUCH_INTERVAL per process, off the request path. */
  touch(video: VideoRef): void {
    const key = videoKey(video);
    if (this.#touched.has(key) || !this.#store.available) return;
    this.#touched.set(key, true);
    const write = this.#store
      .touch(video)
      .catch((error: unknown) => this.#log.debug({ videoId: video.id, err: error }, 'access time not recorded'))
      .finally(() => this.#touches.delete(write));
    this.#touches.add(write);
  }

  /** Forgets a version of a video in memory and drops its stored manifest (its slices are then ignored, and overwritten when fetched again). */
  async invalidate(video: VideoRef, etag: string | undefined): Promise<void> {
    if (etag) this.#invalidated.set(versionKey({ ...video, etag }), true);
    this.#memory.deleteVideo(video);
    await this.#disk?.dropManifest(video);
    try {
      await this.#store.deleteKeys([this.#store.keys.manifest(video)]);
    } catch (error) {
      this.#log.warn({ videoId: video.id, err: error }, 'could not drop the stored manifest');
    }
  }

  /** Waits for head plans, access-time writes and background uploads (shutdown, tests). */
  async idle(): Promise<void> {
    await Promise.all([...this.#headPlans.values(), ...this.#touches, ...this.#sharing]);
    await Promise.all([this.#uploads.idle(), this.#disk?.idle()]);
  }

  /**
   * Shutdown: head plans and uploads, queued and running, get up to `ms` to
   * finish; then the queue is dropped and what is running is waited for (a
   * store call ends within the S3 deadlines; the disk store's temporary file
   * must not outlive its directory). A slice or manifest PUT is all or
   * nothing, so one cut by the process's end leaves nothing visible.
   */
  async close(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.idle(), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
    this.#closing = true;
    for (const { early } of this.#early.values()) early.cancel();
    this.#early.clear();
    await this.idle();
  }
}

/** A reader is done with a slice. */
const letGo = (handle: SliceHandle) => (handle.flight ? handle.flight.release() : handle.slice.charge.release());
const videoKey = (video: VideoRef) => `${video.id}/${video.format}`;
/** Offsets [from, to] within slice `index` of bytes [start, end] of the video. */
const spanIn = (sliceBytes: number, index: number, start: number, end: number) => {
  const base = index * sliceBytes;
  return [Math.max(start, base) - base, Math.min(end, base + sliceBytes - 1) - base] as const;
};
const versionKey = (manifest: VideoRef & { etag: string }) => `${videoKey(manifest)}/${manifest.etag}`;
