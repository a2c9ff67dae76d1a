import { LRUCache } from 'lru-cache';
import type { VideoRef } from './keys.js';
import type { Manifest } from './manifest.js';

/** Manifests are a few hundred bytes; this many bounds them to a few MiB. */
const MAX_ENTRIES = 10_000;

/**
 * Manifests in memory, bounded in count and apart from the slice LRU, so a
 * burst of slices never evicts the manifests that locate them.
 */
export class ManifestCache {
  readonly #lru: LRUCache<string, Manifest>;

  constructor(ttlMs: number) {
    this.#lru = new LRUCache<string, Manifest>({ max: MAX_ENTRIES, ttl: Math.max(1, ttlMs), ttlAutopurge: false });
  }

  get size(): number {
    return this.#lru.size;
  }

  get(video: VideoRef): Manifest | undefined {
    return this.#lru.get(manifestKey(video));
  }
  set(manifest: Manifest): void {
    this.#lru.set(manifestKey(manifest), manifest);
  }
  delete(video: VideoRef): boolean {
    return this.#lru.delete(manifestKey(video));
  }
}

const manifestKey = (video: VideoRef) => `${video.id}/${video.format}`;
