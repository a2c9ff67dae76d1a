import type { ObjectInfo } from '../cache/store.js';
import type { StoreTier } from '../cache/store-tier.js';
import { isVideoId, type VideoId } from '../origin/video-id.js';
import type { AccessSource } from './video-info.js';

/** One object as a listing reports it. */
export type StoredObject = ObjectInfo;

/** Everything the bucket holds for one video (id + format), from a listing alone. */
export interface StoredVideo {
  readonly id: VideoId;
  readonly format: string;
  manifest: StoredObject | undefined;
  access: StoredObject | undefined;
  /** Slice objects in key order (slices/10 before slices/2). */
  readonly slices: (StoredObject & { readonly index: number })[];
  /** Objects (manifest, access, slices) and their bytes. */
  count: number;
  bytes: number;
  /** The newest LastModified among its objects. */
  newest: number;
}

export interface ScanOptions {
  /** List only under this key prefix (default: every video). */
  prefix?: string;
  /** Start after this key (admin pagination). */
  startAfter?: string;
  /** Called per listing page with the number of objects seen so far. */
  onObjects?: (seen: number) => void;
  /** Objects under the videos root that are not tubecache's (never deleted). */
  onForeign?: (object: StoredObject) => void;
}

/**
 * Walks the bucket's listing (page by page, never the whole key set at once)
 * and yields one video at a time, in key order. The keys of one video are
 * contiguous in key order, so a video is complete when the next one starts.
 */
export async function* scanVideos(store: StoreTier, options: ScanOptions = {}): AsyncGenerator<StoredVideo> {
  let current: StoredVideo | undefined;
  let seen = 0;
  for await (const page of store.list(options.prefix ?? store.keys.videosRoot, options.startAfter)) {
    for (const object of page) {
      const parsed = store.keys.parse(object.key);
      if (!parsed || !isVideoId(parsed.id)) {
        options.onForeign?.(object);
        continue;
      }
      if (!current || current.id !== parsed.id || current.format !== parsed.format) {
        if (current) yield current;
        current = { id: parsed.id, format: parsed.format, manifest: undefined, access: undefined, slices: [], count: 0, bytes: 0, newest: 0 };
      }
      if (parsed.kind === 'manifest') current.manifest = object;
      else if (parsed.kind === 'access') current.access = object;
      else current.slices.push({ ...object, index: parsed.index! });
      current.count++;
      current.bytes += object.size;
      current.newest = Math.max(current.newest, object.lastModified);
    }
    seen += page.length;
    options.onObjects?.(seen);
  }
  if (current) yield current;
}

/**
 * Store requests at once when the caller does not say: listing is sequential, but
 * prune and ls read one access object per video, where this is what counts.
 */
export const DEFAULT_CONCURRENCY = 16;

/** Every object of a video but its manifest. */
export const objectsAfterManifest = (video: StoredVideo): StoredObject[] => (video.access ? [video.access, ...video.slices] : video.slices);

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

/** Runs `work` over `items` with at most `limit` at once; `work` handles its own errors. */
export async function forEachLimit<T>(items: Iterable<T>, limit: number, work: (item: T) => Promise<void>): Promise<void> {
  const iterator = items[Symbol.iterator]();
  const worker = async () => {
    for (let next = iterator.next(); !next.done; next = iterator.next()) await work(next.value);
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, worker));
}

/**
 * When the video was last read. Stored objects are written once, so the service
 * records reads in the `access` object (an ISO time, rewritten at most once per
 * ACCESS_TOUCH_INTERVAL per node). Without a readable one: the access object's
 * LastModified, else the manifest's, else the newest object's (an orphan).
 */
export async function lastAccess(store: StoreTier, video: StoredVideo): Promise<{ at: number; source: AccessSource }> {
  if (video.access) {
    const text = await store.getText(video.access.key).catch(() => undefined);
    const at = text === undefined ? NaN : Date.parse(text.trim());
    return { at: Number.isFinite(at) ? at : video.access.lastModified, source: 'access' };
  }
  if (video.manifest) return { at: video.manifest.lastModified, source: 'manifest' };
  return { at: video.newest, source: 'objects' };
}
