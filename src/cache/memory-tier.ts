import { LRUCache } from 'lru-cache';
import type { Metrics } from '../metrics.js';
import type { VideoRef } from './keys.js';
import type { Manifest } from './manifest.js';

/** Small values are charged a nominal size so the byte budget also bounds their count. */
const SMALL_VALUE_BYTES = 1024;

type Entry = Buffer | { readonly value: unknown };

/**
 * The hot tier: one lru-cache with a byte budget and a TTL, holding slices,
 * manifests and (for the origin tier) resolutions. Slice keys include the
 * manifest's ETag, so bytes of two versions of a video never mix.
 */
export class MemoryTier {
  readonly name = 'memory' as const;
  readonly #lru: LRUCache<string, Entry>;

  constructor(options: { maxBytes: number; ttlMs: number; metrics: Metrics }) {
    const { metrics } = options;
    this.#lru = new LRUCache<string, Entry>({
      maxSize: Math.max(1, options.maxBytes),
      ttl: options.ttlMs,
      ttlAutopurge: false,
      sizeCalculation: (entry) => (Buffer.isBuffer(entry) ? Math.max(1, entry.length) : SMALL_VALUE_BYTES),
      // A slice larger than the whole budget is simply not kept.
      maxEntrySize: Math.max(1, options.maxBytes),
      dispose: (_value, _key, reason) => {
        if (reason === 'evict') metrics.memoryEvictions.inc();
      },
    });
    metrics.sources.memory = () => ({ bytes: this.#lru.calculatedSize, entries: this.#lru.size, budget: options.maxBytes });
  }

  get bytes(): number {
    return this.#lru.calculatedSize;
  }
  get entries(): number {
    return this.#lru.size;
  }

  getManifest(video: VideoRef): Manifest | undefined {
    return this.getValue<Manifest>(manifestKey(video));
  }
  putManifest(manifest: Manifest): void {
    this.setValue(manifestKey(manifest), manifest);
  }

  getSlice(manifest: Manifest, index: number): Buffer | undefined {
    const entry = this.#lru.get(sliceKey(manifest, index));
    return Buffer.isBuffer(entry) ? entry : undefined;
  }
  /** Whether the slice is held, without refreshing its recency (used to predict X-Cache-Status). */
  hasSlice(manifest: Manifest, index: number): boolean {
    return this.#lru.has(sliceKey(manifest, index));
  }
  putSlice(manifest: Manifest, index: number, bytes: Buffer): void {
    this.#lru.set(sliceKey(manifest, index), bytes);
  }

  getValue<T>(key: string): T | undefined {
    const entry = this.#lru.get(key);
    return entry && !Buffer.isBuffer(entry) ? (entry.value as T) : undefined;
  }
  setValue(key: string, value: unknown, ttlMs?: number): void {
    this.#lru.set(key, { value }, ttlMs === undefined ? undefined : { ttl: Math.max(1, ttlMs) });
  }
  delete(key: string): void {
    this.#lru.delete(key);
  }

  /** Drops everything held for a video (its manifest and every slice of every version). */
  deleteVideo(video: VideoRef): number {
    const prefix = `${video.id}/${video.format}/`;
    let removed = 0;
    for (const key of [...this.#lru.keys()]) {
      if (key.startsWith(`s:${prefix}`) || key === manifestKey(video)) {
        this.#lru.delete(key);
        removed++;
      }
    }
    return removed;
  }

  /** Slice indexes held for a manifest (for the admin API). */
  slicesHeld(manifest: Manifest): number[] {
    const held: number[] = [];
    const total = Math.ceil(manifest.size / manifest.sliceBytes);
    for (let index = 0; index < total; index++) if (this.hasSlice(manifest, index)) held.push(index);
    return held;
  }
}

const manifestKey = (video: VideoRef) => `m:${video.id}/${video.format}`;
const sliceKey = (manifest: Manifest, index: number) => `s:${manifest.id}/${manifest.format}/${manifest.etag}/${index}`;
