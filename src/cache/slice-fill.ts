import type { TierName } from '../metrics.js';

/**
 * What a slice fetch (slice-flight.ts, slice-stream.ts) shares: the bytes
 * received so far, how it ended, where the bytes come from, and a wake-up for
 * readers waiting on the next change.
 */
export abstract class SliceFill {
  received = 0;
  state: 'running' | 'done' | 'failed' = 'running';
  error: unknown;
  /** Where the bytes come from: the store it started from, 'origin' as soon as any byte did. */
  tier: Exclude<TierName, 'memory'>;
  /** The manifest version the bytes belong to (unknown until a new video's first response). */
  etag: string | undefined;
  readonly controller = new AbortController();
  protected holders = 0;
  #wake = deferred();

  constructor(public length: number | undefined, tier: Exclude<TierName, 'memory'>) {
    this.tier = tier;
  }

  abstract push(chunk: Buffer): void | Promise<void>;

  get aborted(): boolean {
    return this.controller.signal.aborted;
  }

  hold(): void {
    this.holders++;
  }

  finish(): void {
    if (this.state !== 'running') return;
    if (this.received !== this.length) return this.fail(new Error(`slice ended at ${this.received} of ${this.length} bytes`));
    this.completed();
    this.state = 'done';
    this.notify();
  }

  fail(error: unknown): void {
    if (this.state !== 'running') return;
    this.state = 'failed';
    this.error = error;
    this.failed();
    this.notify();
  }

  /** Every byte arrived (before readers hear of it). */
  protected completed(): void {}
  /** The fill failed or was aborted (before readers hear of it). */
  protected failed(): void {}

  /** A chunk that would overrun the slice (or a slice whose length is still unknown). */
  protected overrun(chunk: Buffer): boolean {
    if (this.length !== undefined && this.received + chunk.length <= this.length) return false;
    this.fail(new Error(`slice of ${this.length} bytes got a chunk at ${this.received} of ${chunk.length} bytes`));
    return true;
  }

  protected notify(): void {
    const wake = this.#wake;
    this.#wake = deferred();
    wake.resolve();
  }

  /** Resolves at the next change, or rejects as soon as `signal` aborts. */
  protected changed(signal: AbortSignal): Promise<void> {
    return waitFor(this.#wake.promise, signal);
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
