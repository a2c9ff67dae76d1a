import { setImmediate as yieldTurn } from 'node:timers/promises';
import { TubeError } from '../../src/errors.js';
import type { ByteRange, ListOptions, ListPage, ObjectBody, ObjectHead, ObjectStore, PutOptions } from '../../src/cache/store.js';

/** What the wrapper does to reads; each may be changed while it runs. */
export interface Faults {
  /** Bodies arrive in pieces of at most this many bytes, a turn of the event loop apart (a slow network). */
  pieceBytes?: number;
  /** The byte at this offset of the object reads with its bits flipped (a bad disk, a bad proxy). */
  flipByteAt?: number;
  /** The body fails with this error after this many bytes. */
  failAfterBytes?: number;
}

/**
 * An ObjectStore wrapping another and injecting faults into what it reads.
 * With only `pieceBytes` set it must still pass the conformance suite: the
 * store's contract cannot depend on how bytes are chunked or timed.
 */
export class FaultStore implements ObjectStore {
  readonly kind;
  readonly conditionalWrites;
  readonly location;

  constructor(readonly inner: ObjectStore, readonly faults: Faults = {}) {
    this.kind = inner.kind;
    this.conditionalWrites = inner.conditionalWrites;
    this.location = `faults over ${inner.location}`;
  }

  async get(key: string, range?: ByteRange, signal?: AbortSignal): Promise<ObjectBody | undefined> {
    const object = await this.inner.get(key, range, signal);
    if (!object) return undefined;
    return { ...object, body: this.#damage(object.body, object.start) };
  }

  async *#damage(body: AsyncIterable<Buffer>, start: number): AsyncGenerator<Buffer> {
    const { pieceBytes, flipByteAt, failAfterBytes } = this.faults;
    let at = start;
    for await (const chunk of body) {
      for (let offset = 0; offset < chunk.length; ) {
        const piece = Buffer.from(chunk.subarray(offset, offset + (pieceBytes ?? chunk.length)));
        if (flipByteAt !== undefined && flipByteAt >= at && flipByteAt < at + piece.length) piece[flipByteAt - at]! ^= 0xff;
        if (failAfterBytes !== undefined && at + piece.length > failAfterBytes) throw new TubeError('STORE_ERROR', `injected failure at byte ${failAfterBytes}`);
        offset += piece.length;
        at += piece.length;
        if (pieceBytes !== undefined) await yieldTurn();
        yield piece;
      }
    }
  }

  head(key: string): Promise<ObjectHead | undefined> {
    return this.inner.head(key);
  }
  put(key: string, body: Buffer | AsyncIterable<Buffer>, options?: PutOptions): Promise<{ etag: string }> {
    return this.inner.put(key, body, options);
  }
  list(options: ListOptions): Promise<ListPage> {
    return this.inner.list(options);
  }
  delete(keys: readonly string[]): Promise<{ key: string; message: string }[]> {
    return this.inner.delete(keys);
  }
  ping(): Promise<void> {
    return this.inner.ping();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
