import { compareKeys, type ObjectInfo } from '../cache/store.js';
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
  /** Slices beyond the head uploaded for other nodes (src/cache/lease.ts): short-lived, pruned after SHARED_TTL. */
  readonly shared: StoredObject[];
  /** Objects (manifest, access, slices) and their bytes. */
  count: number;
  bytes: number;
  /** The newest LastModified among its objects. */
  newest: number;
}

export interface ScanOptions {
  /** List only under this key prefix (default: every video). */
  prefix?: string;
  /** Start after this key (admin pagination, listing shards). */
  startAfter?: string;
  /** Stop at the first key at or past this one (listing shards). */
  before?: string;
  /** Called per listing page with the number of objects in it. */
  onObjects?: (count: number) => void;
  /** Objects under the videos root that are not tubecache's (never deleted). */
  onForeign?: (object: StoredObject) => void;
}

/**
 * Groups a listing, in key order, into videos: the keys of one video are
 * contiguous, so a video is complete when the next one starts.
 */
class VideoGrouper {
  #current: StoredVideo | undefined;

  constructor(
    readonly store: StoreTier,
    readonly onForeign: ((object: StoredObject) => void) | undefined,
  ) {}

  /** The video `object` completed, if it starts another. */
  add(object: StoredObject): StoredVideo | undefined {
    const parsed = this.store.keys.parse(object.key);
    if (!parsed || !isVideoId(parsed.id)) {
      this.onForeign?.(object);
      return undefined;
    }
    let done: StoredVideo | undefined;
    let current = this.#current;
    if (!current || current.id !== parsed.id || current.format !== parsed.format) {
      done = current;
      current = this.#current = { id: parsed.id, format: parsed.format, manifest: undefined, access: undefined, slices: [], shared: [], count: 0, bytes: 0, newest: 0 };
    }
    if (parsed.kind === 'manifest') current.manifest = object;
    else if (parsed.kind === 'access') current.access = object;
    else if (parsed.kind === 'shared') current.shared.push(object);
    else current.slices.push({ ...object, index: parsed.index! });
    current.count++;
    current.bytes += object.size;
    current.newest = Math.max(current.newest, object.lastModified);
    return done;
  }

  /** The last video, at the end of the listing. */
  end(): StoredVideo | undefined {
    const last = this.#current;
    this.#current = undefined;
    return last;
  }
}

/**
 * Walks the bucket's listing (page by page, never the whole key set at once)
 * and yields one video at a time, in key order.
 */
export async function* scanVideos(store: StoreTier, options: ScanOptions = {}): AsyncGenerator<StoredVideo> {
  const videos = new VideoGrouper(store, options.onForeign);
  const before = options.before === undefined ? undefined : Buffer.from(options.before);
  pages: for await (const page of store.list(options.prefix ?? store.keys.videosRoot, options.startAfter)) {
    let count = 0;
    for (const object of page) {
      if (before && Buffer.compare(Buffer.from(object.key), before) >= 0) {
        options.onObjects?.(count);
        break pages;
      }
      count++;
      const done = videos.add(object);
      if (done) yield done;
    }
    options.onObjects?.(count);
  }
  const last = videos.end();
  if (last) yield last;
}

/** One disjoint part of the listing. */
type Shard = { prefix: string; startAfter?: string; before?: string };

/** The characters of a video id, in key (byte) order. */
const ID_CHARACTERS = [...'-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz'];
/** Sorts after every key that starts with the same characters. */
const LAST_CHARACTER = '\u{10FFFF}';

/**
 * Disjoint listings that cover every key under the videos root: one prefix per
 * first character of a video id, and a range for each gap between those
 * characters (foreign keys such as `videos/.keep`, which are counted too).
 */
export function listingShards(root: string): Shard[] {
  const shards: Shard[] = [];
  let previous: number | undefined;
  for (const character of ID_CHARACTERS) {
    const code = character.charCodeAt(0);
    if (previous === undefined || code > previous + 1) {
      shards.push({ prefix: root, before: root + character, ...(previous === undefined ? {} : { startAfter: root + String.fromCharCode(previous) + LAST_CHARACTER }) });
    }
    shards.push({ prefix: root + character });
    previous = code;
  }
  shards.push({ prefix: root, startAfter: root + String.fromCharCode(previous!) + LAST_CHARACTER });
  return shards;
}

/**
 * Every video in the bucket, in no particular order, to `onVideo`. A bucket of
 * one listing page is read with that one request (a larger one's first page is
 * read twice); a larger one is listed in
 * shards (listingShards), `concurrency` at once, each streamed page by page,
 * so memory holds at most one page and one video per running shard.
 */
export async function forEachVideo(
  store: StoreTier,
  options: Pick<ScanOptions, 'onObjects' | 'onForeign'> & { concurrency: number; signal?: AbortSignal },
  onVideo: (video: StoredVideo) => void,
): Promise<void> {
  let seen = 0;
  const counted = (count: number) => options.onObjects?.((seen += count));
  const root = store.keys.videosRoot;
  const first = await store.listPage({ prefix: root });
  // The first page is used up to the start of its last video, which may go on in the next page.
  const cut = first.cursor ? lastVideoStart(store, first.objects) : first.objects.length;
  const videos = new VideoGrouper(store, options.onForeign);
  for (const object of first.objects.slice(0, cut)) {
    const done = videos.add(object);
    if (done) onVideo(done);
  }
  const last = videos.end();
  if (last) onVideo(last);
  counted(cut);
  if (!first.cursor) return;
  const after = cut > 0 ? first.objects[cut - 1]!.key : undefined;
  await forEachLimit(shardsAfter(listingShards(root), after), options.concurrency, async (shard) => {
    for await (const video of scanVideos(store, { ...shard, onObjects: counted, onForeign: options.onForeign })) {
      options.signal?.throwIfAborted();
      onVideo(video);
    }
  });
}

/** Index of the first object of the page's last video (the page's length when it ends in foreign keys). */
function lastVideoStart(store: StoreTier, objects: readonly StoredObject[]): number {
  const videoOf = (key: string) => {
    const parsed = store.keys.parse(key);
    return parsed && isVideoId(parsed.id) ? `${parsed.id}/${parsed.format}` : undefined;
  };
  const last = videoOf(objects.at(-1)!.key);
  if (last === undefined) return objects.length;
  let start = objects.length - 1;
  while (start > 0 && videoOf(objects[start - 1]!.key) === last) start--;
  return start;
}

/** The shards, less what lies at or before key `after` (already listed). */
function shardsAfter(shards: readonly Shard[], after: string | undefined): Shard[] {
  if (after === undefined) return [...shards];
  const past = (a: string, b: string) => compareKeys(a, b) > 0;
  return shards.flatMap((shard): Shard[] => {
    const { prefix, startAfter, before } = shard;
    const isPrefix = startAfter === undefined && before === undefined;
    const behind = isPrefix ? !after.startsWith(prefix) && past(after, prefix) : before !== undefined && !past(before, after);
    if (behind) return [];
    const inside = isPrefix ? after.startsWith(prefix) : (startAfter === undefined || past(after, startAfter)) && (before === undefined || past(before, after));
    return [inside ? { ...shard, startAfter: after } : shard];
  });
}

/**
 * Store requests at once when the caller does not say: listing shards (prune),
 * manifests read (ls), delete batches.
 */
export const DEFAULT_CONCURRENCY = 16;

/** Every object of a video but its manifest. */
export const objectsAfterManifest = (video: StoredVideo): StoredObject[] => [...(video.access ? [video.access] : []), ...video.slices, ...video.shared];

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
 * When the video was last read, from the listing alone. Stored objects are
 * written once, so the service rewrites the video's `access` object on a read
 * (at most once per ACCESS_TOUCH_INTERVAL per node): its LastModified is the
 * last read. Without one: the manifest's, else the newest object's (an orphan).
 */
export function lastAccess(video: StoredVideo): { at: number; source: AccessSource } {
  if (video.access) return { at: video.access.lastModified, source: 'access' };
  if (video.manifest) return { at: video.manifest.lastModified, source: 'manifest' };
  return { at: video.newest, source: 'objects' };
}
