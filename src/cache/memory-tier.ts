import { LRUCache } from 'lru-cache';
import type { Metrics } from '../metrics.js';
import type { VideoRef } from './keys.js';
import type { Manifest } from './manifest.js';
import { ManifestCache } from './manifest-cache.js';
import type { Charge, SliceBudget } from './slice-budget.js';

/** A cached slice and its charge, which the LRU holds while the entry lives. */
export interface HeldSlice {
  readonly bytes: Buffer;
  readonly charge: Charge;
}

/**
 * The hot tier: slices in an LRU with a TTL, charged to the process's slice
 * budget (slice-budget.ts), and manifests in their own count-bounded cache.
 * The budget, not the LRU, decides when slices go: when a charge does not fit,
 * the least recently used slices that no reader, fill or upload holds are
 * dropped first. Slice keys include the manifest's ETag, so bytes of two
 * versions of a video never mix.
 */
export class MemoryTier {
  readonly name = 'memory' as const;
  readonly budget: SliceBudget;
  readonly #slices: LRUCache<string, HeldSlice>;
  readonly #manifests: ManifestCache;
  readonly #metrics: Metrics;

  constructor(options: { budget: SliceBudget; ttlMs: number; metrics: Metrics }) {
    const { budget, metrics } = options;
    this.budget = budget;
    this.#metrics = metrics;
    this.#manifests = new ManifestCache(options.ttlMs);
    this.#slices = new LRUCache<string, HeldSlice>({
      // A backstop only: the budget reclaims long before (every cached slice is charged to it).
      maxSize: Math.max(1, budget.maxBytes),
      sizeCalculation: (slice) => Math.max(1, slice.bytes.length),
      ttl: options.ttlMs,
      ttlAutopurge: false,
      dispose: (slice) => slice.charge.release(),
    });
    budget.reclaimWith((bytes) => this.#reclaim(bytes));
    metrics.sources.memory = () => ({ bytes: this.#slices.calculatedSize, entries: this.entries, budget: budget.maxBytes, live: budget.live, pooled: budget.pooled });
  }

  /** Bytes of the slices cached (some may be held elsewhere too). */
  get bytes(): number {
    return this.#slices.calculatedSize;
  }
  get entries(): number {
    return this.#slices.size + this.#manifests.size;
  }

  getManifest(video: VideoRef): Manifest | undefined {
    return this.#manifests.get(video);
  }
  putManifest(manifest: Manifest): void {
    this.#manifests.set(manifest);
  }

  getSlice(manifest: Manifest, index: number): HeldSlice | undefined {
    return this.#slices.get(sliceKey(manifest, index));
  }
  /** The slice without refreshing its recency (to predict X-Cache-Status). */
  peekSlice(manifest: Manifest, index: number): HeldSlice | undefined {
    return this.#slices.peek(sliceKey(manifest, index));
  }
  /** Keeps a slice; the cache takes its own hold on `charge`. */
  putSlice(manifest: Manifest, index: number, bytes: Buffer, charge: Charge): void {
    this.#slices.set(sliceKey(manifest, index), { bytes, charge: charge.hold() });
  }

  /** Drops least recently used slices that only the cache holds until `bytes` are freed or none is left. */
  #reclaim(bytes: number): void {
    // Expired slices still hold their charge until purged (no autopurge timers).
    this.#slices.purgeStale();
    let freed = 0;
    for (const key of [...this.#slices.rkeys()]) {
      if (freed >= bytes) break;
      const slice = this.#slices.peek(key);
      if (slice?.charge.holders !== 1) continue;
      freed += slice.charge.bytes;
      this.#slices.delete(key);
      this.#metrics.memoryEvictions.inc();
    }
  }

  /** Drops everything held for a video (its manifest and every slice of every version). */
  deleteVideo(video: VideoRef): number {
    const prefix = `${video.id}/${video.format}/`;
    let removed = this.#manifests.delete(video) ? 1 : 0;
    for (const key of [...this.#slices.keys()]) {
      if (key.startsWith(prefix)) {
        this.#slices.delete(key);
        removed++;
      }
    }
    return removed;
  }

  /** Slice indexes held for a manifest (for the admin API). */
  slicesHeld(manifest: Manifest): number[] {
    const held: number[] = [];
    const total = Math.ceil(manifest.size / manifest.sliceBytes);
    for (let index = 0; index < total; index++) if (this.#slices.has(sliceKey(manifest, index))) held.push(index);
    return held;
  }
}

const sliceKey = (manifest: Manifest, index: number) => `${manifest.id}/${manifest.format}/${manifest.etag}/${index}`;
