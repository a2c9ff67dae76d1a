import { randomUUID } from 'node:crypto';
import { TubeError } from '../errors.js';
import { bodyOf, checkConditions, collectBody } from './store-util.js';
import { PAGE_MAX, clampRange, compareKeys, type ByteRange, type ListOptions, type ListPage, type ObjectBody, type ObjectHead, type ObjectStore, type PutOptions } from './store.js';

interface Stored {
  head: ObjectHead;
  bytes: Buffer;
}

/**
 * An ObjectStore in this process's memory, bounded by a byte budget (a put
 * that would exceed it is refused). The store behind unit and conformance
 * tests, and the base of the fault-injecting wrapper.
 */
export class MemoryStore implements ObjectStore {
  readonly kind = 'memory' as const;
  readonly conditionalWrites = true;
  readonly location = 'memory';
  readonly #objects = new Map<string, Stored>();
  readonly #maxBytes: number;
  #bytes = 0;

  constructor(options: { maxBytes?: number } = {}) {
    this.#maxBytes = options.maxBytes ?? 256 * 2 ** 20;
  }

  async get(key: string, range?: ByteRange): Promise<ObjectBody | undefined> {
    const stored = this.#objects.get(key);
    if (!stored) return undefined;
    const { start, end } = clampRange(stored.bytes.length, range);
    const bytes = stored.bytes.subarray(start, end + 1);
    return { ...stored.head, start, end, body: bodyOf(bytes), cancel() {} };
  }

  async head(key: string): Promise<ObjectHead | undefined> {
    return this.#objects.get(key)?.head;
  }

  async put(key: string, body: Buffer | AsyncIterable<Buffer>, options: PutOptions = {}): Promise<{ etag: string }> {
    const bytes = await collectBody(body, options.signal);
    // Checked after the body arrived, with no await in between: the check and the write are one step.
    checkConditions(key, this.#objects.get(key)?.head.etag, options);
    const previous = this.#objects.get(key)?.bytes.length ?? 0;
    if (this.#bytes - previous + bytes.length > this.#maxBytes) throw new TubeError('STORE_ERROR', `memory store full (${this.#maxBytes} bytes)`);
    const etag = `"${randomUUID()}"`;
    this.#bytes += bytes.length - previous;
    this.#objects.set(key, {
      bytes,
      head: { key, size: bytes.length, lastModified: Date.now(), etag, contentType: options.contentType, metadata: { ...options.metadata } },
    });
    return { etag };
  }

  async list(options: ListOptions): Promise<ListPage> {
    const after = options.cursor ?? options.startAfter;
    const limit = Math.min(options.limit ?? PAGE_MAX, PAGE_MAX);
    const keys = [...this.#objects.keys()].filter((key) => key.startsWith(options.prefix) && (after === undefined || compareKeys(key, after) > 0)).sort(compareKeys);
    const objects = keys.slice(0, limit).map((key) => {
      const { size, lastModified } = this.#objects.get(key)!.head;
      return { key, size, lastModified };
    });
    return { objects, cursor: keys.length > limit ? objects.at(-1)!.key : undefined };
  }

  async delete(keys: readonly string[]): Promise<{ key: string; message: string }[]> {
    for (const key of keys) {
      this.#bytes -= this.#objects.get(key)?.bytes.length ?? 0;
      this.#objects.delete(key);
    }
    return [];
  }

  async ping(): Promise<void> {}
  async close(): Promise<void> {}
}
