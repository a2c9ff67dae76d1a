import type { TierName } from '../metrics.js';
import type { Lease } from './lease.js';
import type { Charge } from './slice-budget.js';
import { SliceFill } from './slice-fill.js';

/** Never aborts: `settled` waits for the fill itself. */
const NEVER = new AbortController().signal;

/**
 * One slice being fetched (from S3 or the origin), shared by every reader that
 * wants it: readers get the bytes as they arrive, from any offset, without
 * waiting for the whole slice. When the last holder lets go and nothing pins it
 * (head persistence), the fetch is aborted. The slice's bytes are charged to
 * the budget before the fetch starts; the flight's own hold on the charge ends
 * once the fill has returned (`close`) and no reader holds the flight.
 */
export class SliceFlight extends SliceFill {
  /**
   * The slice, filled in place as chunks arrive. Allocated once at the first
   * byte (the length is known by then): arriving chunks are copied in and
   * dropped, so a slice costs its length, not its chunks plus their concatenation.
   */
  #buffer: Buffer | undefined;
  /** The whole slice, once done. */
  bytes: Buffer | undefined;
  readonly charge: Charge;
  /** This node's lease on the slice (nodes sharing a bucket): the bytes are to be uploaded for the others. */
  lease: Lease | undefined;
  /** Where the leased slice is being streamed to (src/cache/tiered-cache.ts #shareSlice). */
  sharedTo: 'slices' | 'shared' | undefined;
  #pinned = false;
  /** Uploads reading the bytes as they arrive (keepBytes): they keep the bytes, not the fetch. */
  #kept = 0;
  #closed = false;
  #dropped = false;

  /** `length` may be unknown until the first origin response (a new video's first slice, charged a whole SLICE_BYTES until then). */
  constructor(length: number | undefined, tier: Exclude<TierName, 'memory'>, charge: Charge) {
    super(length, tier);
    this.charge = charge;
  }

  push(chunk: Buffer): void {
    if (this.state !== 'running' || this.overrun(chunk)) return;
    if (!this.#buffer) {
      this.charge.shrink(this.length!);
      this.#buffer = this.charge.allocate(this.length!);
    }
    chunk.copy(this.#buffer, this.received);
    this.received += chunk.length;
    this.notify();
  }

  protected override completed(): void {
    // The one copy of a slice, for the memory tier and the upload.
    this.bytes = this.#buffer ?? Buffer.alloc(0);
  }

  release(): void {
    this.holders--;
    // Every byte arrived but the fetch has not returned yet: let it finish and be cached.
    const complete = this.received === this.length;
    if (this.holders === 0 && !this.#pinned && this.state === 'running' && !complete) this.controller.abort(new Error('no reader left'));
    this.#letGo();
  }

  /** The fill has returned and handed the bytes on (memory, upload): the flight keeps them only for its readers. */
  close(): void {
    this.#closed = true;
    this.#letGo();
  }

  #letGo(): void {
    if (!this.#closed || this.holders > 0 || this.#kept > 0 || this.#dropped) return;
    this.#dropped = true;
    this.#buffer = undefined;
    this.bytes = undefined;
    this.charge.release();
  }

  /** Keeps the fetch going without readers (the slice is to be persisted). */
  pin(): void {
    this.#pinned = true;
  }

  /** Resolves once the fetch is done or failed; never rejects. */
  async settled(): Promise<void> {
    while (this.state === 'running') await this.changed(NEVER);
  }

  /**
   * Keeps the slice's bytes (not the fetch) until the returned function is
   * called: an upload streamed while the fetch runs reads them with `read`
   * and lets go once the store has answered, so no view of the Buffer is
   * still waiting in a socket when the budget reuses it. A fetch every reader
   * left is still aborted. Undefined when the bytes are already let go.
   */
  keepBytes(): (() => void) | undefined {
    if (this.#dropped) return undefined;
    this.#kept++;
    let kept = true;
    return () => {
      if (!kept) return;
      kept = false;
      this.#kept--;
      this.#letGo();
    };
  }

  /** Resolves at the first byte (or once the fetch ended without one). */
  async started(signal: AbortSignal): Promise<void> {
    while (this.received === 0 && this.state === 'running') await this.changed(signal);
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
      await this.changed(signal);
    }
  }
}
