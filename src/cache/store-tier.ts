import { isTubeError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { ObjectKeys, type VideoRef, type VideoRequest } from './keys.js';
import { parseManifest, sliceBounds, type Manifest } from './manifest.js';
import { encodeSlice, openSlice as openStoredSlice, storedSliceLength } from './slice-codec.js';
import { listAll, readAll, readObject, type ListOptions, type ListPage, type ObjectBody, type ObjectHead, type ObjectInfo, type ObjectStore, type PutOptions } from './store.js';
import { bodyOf } from './store-util.js';

/** After a failed request, the store is skipped for this long (nginx's fail_timeout), so an outage costs one timeout, not one per request. */
const DOWN_MS = 5_000;

export type StoreTierName = 'disk' | 's3';

/** A slice GET started before its manifest was known (StoreTier.earlySlice). */
export interface EarlySlice {
  readonly object: Promise<ObjectBody | undefined>;
  cancel(): void;
}

/**
 * The persistent tier: videos (manifests, slices, access times) in an
 * ObjectStore, in the key layout of ObjectKeys. Slices are stored with their
 * digests and checked on every read (slice-codec.ts). Failures are counted,
 * and open a short window in which the store is skipped, so an outage degrades
 * to the origin instead of failing clients.
 */
export class StoreTier {
  readonly name: StoreTierName;
  readonly keys: ObjectKeys;
  readonly store: ObjectStore;
  readonly #metrics: Metrics;
  #downUntil = 0;

  constructor(store: ObjectStore & { kind: StoreTierName }, options: { prefix: string; metrics: Metrics }) {
    this.store = store;
    this.name = store.kind;
    this.keys = new ObjectKeys(options.prefix);
    this.#metrics = options.metrics;
  }

  /** False while a recent failure keeps the store out of the request path. */
  get available(): boolean {
    return Date.now() >= this.#downUntil;
  }

  async #call<T>(operation: string, run: () => Promise<T>): Promise<T> {
    const stopTimer = this.#metrics.storeSeconds.startTimer({ store: this.name, operation });
    try {
      const result = await run();
      const outcome = result === undefined ? 'miss' : 'ok';
      stopTimer({ outcome });
      this.#metrics.storeOperations.inc({ store: this.name, operation, outcome });
      return result;
    } catch (error) {
      if (isTubeError(error, 'STORE_ERROR')) {
        stopTimer({ outcome: 'error' });
        this.#down(operation);
      }
      throw error;
    }
  }

  ping(): Promise<void> {
    return this.store.ping();
  }

  /** The stored manifest of this video's format; one of another slice size or selector is absent. */
  async getManifest(video: VideoRequest, sliceBytes: number): Promise<Manifest | undefined> {
    const text = await this.getText(this.keys.manifest(video));
    return text === undefined ? undefined : parseManifest(text, { ...video, sliceBytes });
  }

  /**
   * Writes `change(stored)` as the video's manifest. With conditional writes
   * (`cas`), a compare-and-swap on the etag read, read again and retried when
   * another node wrote in between, so no node's entries are lost; without, a
   * plain put. `change` returning undefined writes nothing.
   */
  async updateManifest(video: Pick<Manifest, 'id' | 'format' | 'selector'>, sliceBytes: number, change: (stored: Manifest | undefined) => Manifest | undefined, cas: boolean): Promise<void> {
    const key = this.keys.manifest(video);
    for (;;) {
      const object = cas ? await this.#call('get', () => readObject(this.store, key)) : undefined;
      const stored = object && parseManifest(object.bytes.toString('utf8'), { ...video, sliceBytes });
      const next = change(stored);
      if (!next) return;
      const body = Buffer.from(JSON.stringify(next, null, 2));
      const condition = !cas ? {} : object ? { ifMatch: object.etag } : { ifNoneMatch: '*' as const };
      try {
        await this.#call('put', () => this.store.put(key, body, { contentType: 'application/json', ...condition }));
        return;
      } catch (error) {
        if (!isTubeError(error, 'PRECONDITION_FAILED')) throw error;
      }
    }
  }

  async getText(key: string): Promise<string | undefined> {
    return (await this.#call('get', () => readAll(this.store, key)))?.toString('utf8');
  }

  async putText(key: string, body: string, contentType: string): Promise<void> {
    await this.#call('put', () => this.store.put(key, Buffer.from(body), { contentType }));
  }

  /**
   * Slice `index` of this manifest's version, each chunk checked against its
   * digest before it is yielded; undefined when the store has no such slice
   * (absent, or of another version). A chunk that fails its check throws
   * SLICE_CORRUPT; a store failure throws STORE_ERROR. `poll-slice`: a lease
   * follower's look for another node's upload, counted apart from reads.
   */
  async openSlice(
    manifest: Manifest,
    index: number,
    signal: AbortSignal,
    shared = false,
    operation: 'get-slice' | 'poll-slice' = 'get-slice',
    early?: EarlySlice,
  ): Promise<AsyncGenerator<Buffer> | undefined> {
    const open = async () => {
      const object = await (early?.object ?? this.store.get(this.#sliceKey(manifest, index, shared), undefined, signal));
      if (!object) return undefined;
      const slice = await openStoredSlice(object.body, { etag: manifest.etag, length: sliceBounds(manifest, index).length }).catch((error: unknown) => {
        object.cancel();
        throw error;
      });
      if (!slice) object.cancel();
      return slice && this.#watched(slice);
    };
    if (!early) return this.#call(operation, open);
    // An early GET was counted and timed when it began (earlySlice); what fails now is its body.
    if (signal.aborted) early.cancel();
    else signal.addEventListener('abort', early.cancel, { once: true });
    return open().catch((error: unknown) => {
      if (isTubeError(error, 'STORE_ERROR')) this.#down(operation);
      throw error;
    });
  }

  /**
   * Starts the GET of slice `index` (at its head place) before the video's
   * manifest is known, so that an S3 hit costs one round trip instead of two;
   * `openSlice` checks what it got against the manifest as for any read.
   */
  earlySlice(video: VideoRef, index: number): EarlySlice {
    const controller = new AbortController();
    // Counted and timed as any slice GET; a failure opens the skip window even if no read takes it.
    const object = this.#call('get-slice', () => this.store.get(this.keys.slice(video, index), undefined, controller.signal));
    // Handled here for the case nobody opens it; openSlice still sees the failure.
    object.catch(() => undefined);
    return {
      object,
      cancel: () => {
        controller.abort();
        void object.then((body) => body?.cancel(), () => undefined);
      },
    };
  }

  /** A store that fails mid-body is as down as one that fails to answer. */
  async *#watched(slice: AsyncGenerator<Buffer>): AsyncGenerator<Buffer> {
    try {
      yield* slice;
    } catch (error) {
      if (isTubeError(error, 'STORE_ERROR')) this.#down('get-slice');
      throw error;
    }
  }

  #down(operation: string): void {
    this.#metrics.storeOperations.inc({ store: this.name, operation, outcome: 'error' });
    this.#downUntil = Date.now() + DOWN_MS;
  }

  /** A small object's head (a lease): counted, and a failure opens the skip window like any other. */
  headObject(key: string): Promise<ObjectHead | undefined> {
    return this.#call('head', () => this.store.head(key));
  }

  /** A small object, maybe conditional (a lease); a refused condition is PRECONDITION_FAILED and no failure of the store. */
  async putObject(key: string, body: Buffer, options: PutOptions): Promise<string> {
    return (await this.#call('put', () => this.store.put(key, body, options))).etag;
  }

  /**
   * Stores a slice with its digests, visible only once complete. `bytes` may
   * still be arriving (a leased slice streamed while it is fetched): they are
   * sent as they come, and a source that fails or ends short leaves nothing;
   * such a put is not retried (its bytes are gone once sent). A whole slice
   * goes without a declared length: S3 collects it into one Buffer, which the
   * client may send again after a 5xx; the disk store writes it as it comes.
   * `shared`: one beyond the head, for other nodes.
   */
  async putSlice(manifest: Manifest, index: number, bytes: Buffer | AsyncIterable<Buffer>, shared = false, signal?: AbortSignal): Promise<void> {
    const identity = { etag: manifest.etag, length: sliceBounds(manifest, index).length };
    const key = this.#sliceKey(manifest, index, shared);
    const whole = Buffer.isBuffer(bytes);
    const body = encodeSlice(whole ? bodyOf(bytes) : bytes, identity);
    const options = { contentType: 'application/octet-stream', signal, ...(!whole && { length: storedSliceLength(identity) }) };
    // A streamed one is counted apart: its duration is the origin's as much as the store's.
    await this.#call(whole ? 'put-slice' : 'stream-slice', () => this.store.put(key, body, options));
  }

  #sliceKey(manifest: Manifest, index: number, shared: boolean): string {
    return shared ? this.keys.shared(manifest, index) : this.keys.slice(manifest, index);
  }

  async touch(video: VideoRef, at = new Date()): Promise<void> {
    await this.putText(this.keys.access(video), at.toISOString(), 'text/plain');
  }

  /** Every object under `prefix` (after key `startAfter`, when given), page by page. */
  async *list(prefix: string, startAfter?: string): AsyncGenerator<ObjectInfo[]> {
    const pages = listAll(this.store, prefix, startAfter);
    for (;;) {
      const page = await this.#call('list', () => pages.next());
      if (page.done) return;
      yield page.value;
    }
  }

  /** One listing page (see ObjectStore.list). */
  listPage(options: ListOptions): Promise<ListPage> {
    return this.#call('list', () => this.store.list(options));
  }

  /** Deletes keys; returns the ones the store refused. */
  deleteKeys(keys: readonly string[]): Promise<{ key: string; message: string }[]> {
    return this.#call('delete', () => this.store.delete(keys));
  }
}
