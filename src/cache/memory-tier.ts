import { LRUCache } from 'lru-cache';
import type { Metrics } from '../metrics.js';
import type { VideoRef } from './keys.js';
import type { Manifest } from './manifest.js';

/** Small values are charged a nominal size so the byte budget also bounds their count. */
const SMALL_VALUE_BYTES = 1024;

type Entry = Buffer | { readonly value: Manifest };

/**
 * The hot tier: one lru-cache with a byte budget and a TTL, holding slices
 * and manifests. Slice keys include the
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
    const entry = this.#lru.get(manifestKey(video));
    return entry && !Buffer.isBuffer(entry) ? (entry.value as Manifest) : undefined;
  }
  putManifest(manifest: Manifest): void {
    this.#lru.set(manifestKey(manifest), { value: manifest });
  }

  getSlice(manifest: Manifest, index: number): Buffer | undefined {
    const entry = this.#lru.get(sliceKey(manifest, index));
    return Buffer.isBuffer(entry) ? entry : undefined;
  }
  /** The slice without refreshing its recency (to predict X-Cache-Status). */
  peekSlice(manifest: Manifest, index: number): Buffer | undefined {
    const entry = this.#lru.peek(sliceKey(manifest, index));
    return Buffer.isBuffer(entry) ? entry : undefined;
  }
  putSlice(manifest: Manifest, index: number, bytes: Buffer): void {
    this.#lru.set(sliceKey(manifest, index), bytes);
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
    for (let index = 0; index < total; index++) if (this.#lru.has(sliceKey(manifest, index))) held.push(index);
    return held;
  }
}

const manifestKey = (video: VideoRef) => `m:${video.id}/${video.format}`;
const sliceKey = (manifest: Manifest, index: number) => `s:${manifest.id}/${manifest.format}/${manifest.etag}/${index}`;
