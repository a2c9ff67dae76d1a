/**
 * The object-store seam: what the cache needs from a place that keeps bytes
 * under keys (memory, a local directory, an S3 bucket). Every implementation
 * passes test/conformance/store.test.ts. Errors are translated once, inside
 * each store: an absent object is `undefined`, anything else a TubeError
 * (STORE_ERROR, or PRECONDITION_FAILED for a refused conditional put).
 */

/** One object as a listing shows it. */
export interface ObjectInfo {
  readonly key: string;
  readonly size: number;
  /** Milliseconds since the epoch. */
  readonly lastModified: number;
}

export interface ObjectHead extends ObjectInfo {
  /** Changes with every put: what `ifMatch` compares against. */
  readonly etag: string;
  readonly contentType: string | undefined;
  /** Small string pairs (S3 allows 2 KB in all), stored with the bytes. */
  readonly metadata: Readonly<Record<string, string>>;
  /**
   * The store's clock when it answered (S3: the Date header), to compare with
   * `lastModified` on one clock; absent from stores on this machine's clock.
   */
  readonly serverTime?: number;
}

export interface ObjectBody extends ObjectHead {
  /** Bytes [start, end] (inclusive) of the object; a range past the end gives start = size and no bytes. */
  readonly start: number;
  readonly end: number;
  /** The bytes, as they arrive. A reader that stops early calls `cancel()`. */
  readonly body: AsyncIterable<Buffer>;
  cancel(): void;
}

/** Inclusive byte range; `end` past the object's end is clamped to it. */
export interface ByteRange {
  readonly start: number;
  readonly end?: number;
}

export interface PutOptions {
  readonly contentType?: string;
  readonly metadata?: Readonly<Record<string, string>>;
  /** `'*'`: write only if no object has the key. Needs `conditionalWrites`. */
  readonly ifNoneMatch?: '*';
  /** Write only if the object's etag is this one. Needs `conditionalWrites`. */
  readonly ifMatch?: string;
  /**
   * The exact length of a body given as a stream: a store that must know it
   * first (S3) then sends the bytes as they come instead of collecting them.
   */
  readonly length?: number;
  readonly signal?: AbortSignal;
}

export interface ListOptions {
  readonly prefix: string;
  /** Keys after this one (ignored when `cursor` is given). */
  readonly startAfter?: string;
  /** `cursor` of the previous page. */
  readonly cursor?: string;
  /** At most this many objects (and at most 1000). */
  readonly limit?: number;
}

export interface ListPage {
  /** In byte order of the keys, as S3 lists them. */
  readonly objects: ObjectInfo[];
  /** Pass back for the next page; undefined on the last. */
  readonly cursor: string | undefined;
}

export type StoreKind = 'memory' | 'disk' | 's3';

export interface ObjectStore {
  readonly kind: StoreKind;
  /** Whether `ifNoneMatch` / `ifMatch` are honoured; a store without them refuses such a put (STORE_ERROR). */
  readonly conditionalWrites: boolean;
  /** Where it is, for logs and doctor (a directory, an endpoint and bucket). */
  readonly location: string;
  get(key: string, range?: ByteRange, signal?: AbortSignal): Promise<ObjectBody | undefined>;
  head(key: string): Promise<ObjectHead | undefined>;
  /** Visible to readers only once complete: a put that fails or is aborted leaves the previous object (or none). */
  put(key: string, body: Buffer | AsyncIterable<Buffer>, options?: PutOptions): Promise<{ etag: string }>;
  list(options: ListOptions): Promise<ListPage>;
  /** Deletes keys (absent ones are not failures); returns the keys the store refused. */
  delete(keys: readonly string[]): Promise<{ key: string; message: string }[]>;
  /** Throws unless the store answers (readiness, doctor). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The most keys one `list` page or one `delete` call handles at once (S3's limit). */
export const PAGE_MAX = 1000;

/** Every object under `prefix`, page by page. */
export async function* listAll(store: ObjectStore, prefix: string, startAfter?: string): AsyncGenerator<ObjectInfo[]> {
  let cursor: string | undefined;
  do {
    const page = await store.list({ prefix, startAfter, cursor });
    if (page.objects.length) yield page.objects;
    cursor = page.cursor;
  } while (cursor);
}

/** A whole object's bytes, or undefined (small objects: manifests, access times). */
export async function readAll(store: ObjectStore, key: string): Promise<Buffer | undefined> {
  return (await readObject(store, key))?.bytes;
}

/** A whole small object with its etag (what a compare-and-swap puts `ifMatch`). */
export async function readObject(store: ObjectStore, key: string): Promise<{ bytes: Buffer; etag: string } | undefined> {
  const object = await store.get(key);
  if (!object) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of object.body) chunks.push(chunk);
  return { bytes: Buffer.concat(chunks), etag: object.etag };
}

/** Clamps a requested range to an object of `size` bytes (a start past the end reads nothing). */
export function clampRange(size: number, range: ByteRange | undefined): { start: number; end: number } {
  const start = Math.min(range?.start ?? 0, size);
  const end = Math.min(range?.end ?? size - 1, size - 1);
  return { start, end: Math.max(end, start - 1) };
}

/** Key order as S3 lists it: by UTF-8 bytes, not UTF-16 code units. */
export const compareKeys = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));
