import type { TierName } from '../metrics.js';

/**
 * One slice being fetched (from S3 or the origin), shared by every reader that
 * wants it: readers get each chunk as it arrives, from any offset, without
 * waiting for the whole slice. When the last holder lets go and nothing pins it
 * (head persistence), the fetch is aborted.
 */
export class SliceFlight {
  readonly chunks: Buffer[] = [];
  received = 0;
  state: 'running' | 'done' | 'failed' = 'running';
  error: unknown;
  /** Where the bytes came from; 'origin' as soon as any byte did. */
  tier: Exclude<TierName, 'memory'> = 's3';
  /** The manifest version the bytes belong to (unknown until a new video's first response). */
  etag: string | undefined;
  /** The whole slice, once done. */
  bytes: Buffer | undefined;
  readonly controller = new AbortController();
  #holders = 0;
  #pinned = false;
  #wake = deferred();

  /** `length` may be unknown until the first origin response (a new video's first slice). */
  constructor(public length: number | undefined) {}

  get holders(): number {
    return this.#holders;
  }

  push(chunk: Buffer): void {
    if (this.state !== 'running') return;
    this.chunks.push(chunk);
    this.received += chunk.length;
    this.#notify();
  }

  finish(): void {
    if (this.state !== 'running') return;
    if (this.received !== this.length) return this.fail(new Error(`slice ended at ${this.received} of ${this.length} bytes`));
    // The one copy of a slice: chunks become a single Buffer for the memory tier and the upload.
    this.bytes = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.received);
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

  /** Yields bytes [from, to] (inclusive, relative to the slice) as they arrive. */
  async *read(from: number, to: number, signal: AbortSignal): AsyncGenerator<Buffer> {
    let position = 0; // slice offset where chunk `index` starts
    let index = 0;
    let next = from;
    while (next <= to) {
      while (index < this.chunks.length && next <= to) {
        const chunk = this.chunks[index]!;
        const chunkEnd = position + chunk.length;
        if (next < chunkEnd) {
          const until = Math.min(chunkEnd, to + 1);
          yield next === position && until === chunkEnd ? chunk : chunk.subarray(next - position, until - position);
          next = until;
        }
        if (next >= chunkEnd) {
          position = chunkEnd;
          index++;
        }
      }
      if (next > to) return;
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
