import type { TierName } from '../metrics.js';
import type { Lease } from './lease.js';

/**
 * One slice being fetched (from S3 or the origin), shared by every reader that
 * wants it: readers get the bytes as they arrive, from any offset, without
 * waiting for the whole slice. When the last holder lets go and nothing pins it
 * (head persistence), the fetch is aborted.
 */
export class SliceFlight {
  /**
   * The slice, filled in place as chunks arrive. Allocated once at the first
   * byte (the length is known by then): arriving chunks are copied in and
   * dropped, so a slice costs its length, not its chunks plus their concatenation.
   */
  #buffer: Buffer | undefined;
  received = 0;
  state: 'running' | 'done' | 'failed' = 'running';
  error: unknown;
  /** Where the bytes come from: the store it started from, 'origin' as soon as any byte did. */
  tier: Exclude<TierName, 'memory'>;
  /** The manifest version the bytes belong to (unknown until a new video's first response). */
  etag: string | undefined;
  /** The whole slice, once done. */
  bytes: Buffer | undefined;
  /** This node's lease on the slice (nodes sharing a bucket): the bytes are to be uploaded for the others. */
  lease: Lease | undefined;
  readonly controller = new AbortController();
  #holders = 0;
  #pinned = false;
  #wake = deferred();

  /** `length` may be unknown until the first origin response (a new video's first slice). */
  constructor(public length: number | undefined, tier: Exclude<TierName, 'memory'>) {
    this.tier = tier;
  }

  push(chunk: Buffer): void {
    if (this.state !== 'running') return;
    if (this.length === undefined || this.received + chunk.length > this.length) {
      return this.fail(new Error(`slice of ${this.length} bytes got a chunk at ${this.received} of ${chunk.length} bytes`));
    }
    this.#buffer ??= Buffer.allocUnsafe(this.length);
    chunk.copy(this.#buffer, this.received);
    this.received += chunk.length;
    this.#notify();
  }

  finish(): void {
    if (this.state !== 'running') return;
    if (this.received !== this.length) return this.fail(new Error(`slice ended at ${this.received} of ${this.length} bytes`));
    // The one copy of a slice, for the memory tier and the upload.
    this.bytes = this.#buffer ?? Buffer.alloc(0);
    this.state = 'done';
    this.#notify();
  }

  fail(error: unknown): void {
    if (this.state !== 'running') return;
    this.state = 'failed';
    this.error = error;
    this.#notify();
  }

  hold(): void {
    this.#holders++;
  }

  release(): void {
    this.#holders--;
    // Every byte arrived but the fetch has not returned yet: let it finish and be cached.
    const complete = this.received === this.length;
    if (this.#holders === 0 && !this.#pinned && this.state === 'running' && !complete) this.controller.abort(new Error('no reader left'));
  }

  /** Keeps the fetch going without readers (the slice is to be persisted). */
  pin(): void {
    this.#pinned = true;
  }

  get aborted(): boolean {
    return this.controller.signal.aborted;
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = deferred();
    wake.resolve();
  }

  /** Resolves once the fetch is done or failed; never rejects. */
  async settled(): Promise<void> {
    while (this.state === 'running') await this.#wake.promise;
  }

  /** Yields bytes [from, to] (inclusive, relative to the slice) as they arrive: views of the slice, never copies. */
  async *read(from: number, to: number, signal: AbortSignal): AsyncGenerator<Buffer> {
    let next = from;
    while (next <= to) {
      if (next < this.received) {
        const until = Math.min(this.received, to + 1);
        yield this.#buffer!.subarray(next, until);
        next = until;
        continue;
      }
      if (this.state === 'failed') throw this.error;
      if (this.state === 'done') throw new Error(`slice has ${this.received} bytes, reader wanted up to ${to}`);
      await waitFor(this.#wake.promise, signal);
    }
  }
}

/** Node 20 has no Promise.withResolvers. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

/** Awaits `promise`, or rejects as soon as `signal` aborts (a client that left). */
function waitFor(promise: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}
