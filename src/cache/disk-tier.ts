import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { isTubeError } from '../errors.js';
import { Limiter } from '../limiter.js';
import type { Metrics } from '../metrics.js';
import { DiskStore } from './disk-store.js';
import type { VideoRef, VideoRequest } from './keys.js';
import type { Manifest } from './manifest.js';
import { StoreTier } from './store-tier.js';

/**
 * Writes run one at a time: each makes room for itself before it starts, so the
 * files on disk exceed the budget by at most the one being written.
 */
const WRITERS = 1;
/** How a manifest's key ends (src/cache/keys.ts). */
const MANIFEST_SUFFIX = '/manifest.json';

/**
 * This node's disk tier, between memory and S3 (DISK_CACHE_DIR): slices and
 * manifests read from S3 or the origin, in a DiskStore and the slice format
 * of every store (digests checked on every read), within DISK_CACHE_BYTES.
 *
 * The index (key → bytes on disk, least recently read first) lives in memory
 * and is rebuilt at start-up from readdir and stat alone. A file's mtime is its
 * last read, so the eviction order survives a restart; times are handed out
 * strictly increasing so two reads in one millisecond keep their order.
 * Writes go through a bounded queue and are dropped (and counted) when it is full.
 */
export class DiskTier {
  readonly name = 'disk' as const;
  readonly budget: number;
  readonly #store: DiskStore;
  readonly #tier: StoreTier;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #index = new Map<string, number>();
  /** Keys with a write queued or running. */
  readonly #queued = new Set<string>();
  readonly #writes: Limiter;
  readonly #touches = new Set<Promise<unknown>>();
  #bytes = 0;
  #clock = 0;
  #closing = false;

  private constructor(store: DiskStore, config: Config, metrics: Metrics, logger: Logger) {
    this.#store = store;
    this.#tier = new StoreTier(store, { prefix: '', metrics });
    this.budget = config.DISK_CACHE_BYTES;
    this.#metrics = metrics;
    this.#log = logger;
    this.#writes = new Limiter(WRITERS, config.DISK_CACHE_QUEUE);
    metrics.sources.disk = () => ({ bytes: this.#bytes, entries: this.#index.size, budget: this.budget, queued: this.#writes.queued });
  }

  /** The disk tier DISK_CACHE_DIR names, its index rebuilt from the directory; undefined when it is not set. */
  static async open(config: Config, metrics: Metrics, logger: Logger): Promise<DiskTier | undefined> {
    if (!config.DISK_CACHE_DIR) return undefined;
    // No fsync: every read is checked against its digests, so a file a power cut tore is a miss, and writes keep up with reads.
    const tier = new DiskTier(await DiskStore.open(config.DISK_CACHE_DIR, { sync: false }), config, metrics, logger);
    await tier.#rebuild();
    return tier;
  }

  async #rebuild(): Promise<void> {
    const files: { key: string; bytes: number; mtimeMs: number }[] = [];
    for await (const batch of this.#store.files()) files.push(...batch);
    files.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const { key, bytes, mtimeMs } of files) {
      this.#index.set(key, bytes);
      this.#bytes += bytes;
      this.#clock = Math.max(this.#clock, Math.ceil(mtimeMs));
    }
    // A budget lowered since the last run applies at once.
    await this.#evict(0);
    this.#log.info({ directory: this.#store.location, files: this.#index.size, bytes: this.#bytes, budget: this.budget }, 'disk tier ready');
  }

  get bytes(): number {
    return this.#bytes;
  }
  get entries(): number {
    return this.#index.size;
  }
  get queued(): number {
    return this.#writes.queued;
  }
  get location(): string {
    return this.#store.location;
  }

  /** Whether the disk holds a slice of this video under this index (of some version: a read tells). */
  has(manifest: Manifest, index: number): boolean {
    return this.#tier.available && this.#index.has(this.#tier.keys.slice(manifest, index));
  }

  /** The video's manifest as this node last stored it; undefined when absent or unreadable (then dropped). */
  async getManifest(video: VideoRequest, sliceBytes: number): Promise<Manifest | undefined> {
    const key = this.#tier.keys.manifest(video);
    if (!this.#index.has(key) || !this.#tier.available) return undefined;
    try {
      const manifest = await this.#tier.getManifest(video, sliceBytes);
      if (manifest) {
        this.#touch(key);
        return manifest;
      }
    } catch (error) {
      this.#log.warn({ videoId: video.id, err: error }, 'disk tier manifest unreadable; dropping it');
    }
    await this.#drop(key);
    return undefined;
  }

  /**
   * Pushes slice `index` of this manifest's version, each chunk checked against
   * its digest first. False when the disk does not hold it, or holds another
   * version, a corrupt file or one it cannot read: the file is then deleted and
   * the caller continues from the byte `push` reached (every byte pushed was checked).
   */
  async fill(manifest: Manifest, index: number, push: (chunk: Buffer) => unknown, signal: AbortSignal): Promise<boolean> {
    const key = this.#tier.keys.slice(manifest, index);
    try {
      const slice = await this.#tier.openSlice(manifest, index, signal);
      if (slice) {
        for await (const chunk of slice) await push(chunk);
        this.#touch(key);
        return true;
      }
    } catch (error) {
      if (signal.aborted) throw error;
      if (isTubeError(error, 'SLICE_CORRUPT')) {
        this.#metrics.integrityFailures.inc({ store: this.name });
        this.#log.error({ videoId: manifest.id, index, err: error }, 'disk tier slice is corrupt; dropping it');
      } else {
        this.#log.warn({ videoId: manifest.id, index, err: error }, 'disk tier slice read failed; dropping it');
      }
    }
    await this.#drop(key);
    return false;
  }

  /**
   * Queues a slice read from S3 or the origin for the disk; dropped and counted
   * when the queue is full. `done` runs once the bytes are no longer needed (written, failed or dropped).
   */
  writeSlice(manifest: Manifest, index: number, bytes: Buffer, done?: () => void): void {
    // A manifest write dropped earlier (queue full) is made good with the video's next slice: without it, its slices are not found after a restart.
    const manifestKey = this.#tier.keys.manifest(manifest);
    if (!this.#index.has(manifestKey) && !this.#queued.has(manifestKey)) this.writeManifest(manifest);
    this.#enqueue(this.#tier.keys.slice(manifest, index), bytes.length, () => this.#tier.putSlice(manifest, index, bytes), done);
  }

  writeManifest(manifest: Manifest): void {
    this.#enqueue(this.#tier.keys.manifest(manifest), 0, () => this.#tier.putText(this.#tier.keys.manifest(manifest), JSON.stringify(manifest, null, 2), 'application/json'));
  }

  /** Forgets a video's manifest (its version changed at the origin); its slices then read as another version and are dropped. */
  async dropManifest(video: VideoRef): Promise<void> {
    await this.#drop(this.#tier.keys.manifest(video));
  }

  #enqueue(key: string, bytes: number, put: () => Promise<void>, done = () => {}): void {
    if (this.#closing || bytes > this.budget) return done();
    this.#queued.add(key);
    const task = this.#writes.tryRun(async () => {
      try {
        if (this.#closing) return;
        await this.#evict(bytes, key);
        await put();
        const size = await this.#store.touch(key, this.#now());
        this.#account(key, size);
        await this.#evict(0);
        this.#metrics.diskWrites.inc({ outcome: 'ok' });
      } catch (error) {
        this.#metrics.diskWrites.inc({ outcome: 'error' });
        this.#log.warn({ key, err: error }, 'disk tier write failed');
      } finally {
        this.#queued.delete(key);
        done();
      }
    });
    if (task) return;
    this.#queued.delete(key);
    this.#metrics.diskWritesDropped.inc();
    done();
  }

  /**
   * Evicts the least recently read files until `incoming` more bytes (replacing
   * `key`, if held) fit the budget: slices first, manifests (a few hundred bytes,
   * without which a video's slices cannot be found after a restart) only when no slice is left.
   */
  async #evict(incoming: number, key?: string): Promise<void> {
    const victims: string[] = [];
    const replaced = key === undefined ? 0 : (this.#index.get(key) ?? 0);
    if (this.#bytes - replaced + incoming <= this.budget) return;
    const keys = [...this.#index.keys()];
    const isManifest = (candidate: string) => candidate.endsWith(MANIFEST_SUFFIX);
    for (const oldest of [...keys.filter((candidate) => !isManifest(candidate)), ...keys.filter(isManifest)]) {
      if (this.#bytes - replaced + incoming <= this.budget) break;
      if (oldest === key) continue;
      victims.push(oldest);
      this.#account(oldest, undefined);
    }
    if (!victims.length) return;
    this.#metrics.diskEvictions.inc(victims.length);
    const refused = await this.#store.delete(victims);
    for (const { key: victim, message } of refused) this.#log.warn({ key: victim, message }, 'disk tier could not delete an evicted file');
  }

  async #drop(key: string): Promise<void> {
    this.#account(key, undefined);
    const refused = await this.#store.delete([key]).catch((error: unknown) => [{ key, message: (error as Error).message }]);
    for (const { message } of refused) this.#log.warn({ key, message }, 'disk tier could not delete a file');
  }

  /** Records `key` as `size` bytes, most recently read (undefined: no longer held). */
  #account(key: string, size: number | undefined): void {
    this.#bytes -= this.#index.get(key) ?? 0;
    this.#index.delete(key);
    if (size === undefined) return;
    this.#index.set(key, size);
    this.#bytes += size;
  }

  /** A read: most recent in memory now, and in the file's mtime for the next start-up (off the read path). */
  #touch(key: string): void {
    const size = this.#index.get(key);
    if (size === undefined) return;
    this.#account(key, size);
    const write = this.#store
      .touch(key, this.#now())
      .catch((error: unknown) => this.#log.debug({ key, err: error }, 'disk tier access time not recorded'))
      .finally(() => this.#touches.delete(write));
    this.#touches.add(write);
  }

  #now(): number {
    this.#clock = Math.max(Date.now(), this.#clock + 1);
    return this.#clock;
  }

  /** Waits for queued writes and access times (tests, shutdown). */
  async idle(): Promise<void> {
    await Promise.all([this.#writes.idle(), ...this.#touches]);
  }

  /** Drops what is queued, waits for the write running, and closes the store. */
  async close(): Promise<void> {
    this.#closing = true;
    await this.idle();
    await this.#store.close();
  }
}
