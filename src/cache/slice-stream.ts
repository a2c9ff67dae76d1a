import type { TierName } from '../metrics.js';
import type { Charge, SliceBudget } from './slice-budget.js';
import { SliceFill } from './slice-fill.js';

/**
 * One slice streamed through to a single reader without being kept: the fill
 * when the budget has no room for the whole slice. Each chunk is charged to
 * the budget (waiting for room) and handed over one at a time; the fill waits
 * until the reader has taken it, so a slow reader slows the socket behind it
 * instead of piling chunks up. Nothing is cached, joined or uploaded.
 */
export class SliceStream extends SliceFill {
  readonly #budget: SliceBudget;
  #slot: { chunk: Buffer; offset: number; charge: Charge } | undefined;
  #start: (() => void) | undefined;

  /** `start` begins the fill; it runs when the reader first reads, so a read-ahead stream holds no chunk while its reader is on the slice before. */
  constructor(length: number, tier: Exclude<TierName, 'memory'>, budget: SliceBudget, start: () => void) {
    super(length, tier);
    this.#budget = budget;
    this.#start = start;
  }

  /** Before the fill starts: a reader that starts mid-slice has the origin asked from there (a store read starts at 0, its digest covers the whole slice). */
  skipTo(offset: number): void {
    if (this.received === 0 && this.tier === 'origin') this.received = offset;
  }

  async push(chunk: Buffer): Promise<void> {
    if (this.state !== 'running' || this.overrun(chunk)) return;
    const signal = this.controller.signal;
    const charge = await this.#budget.charge(chunk.length, signal);
    this.#slot = { chunk, offset: this.received, charge };
    this.received += chunk.length;
    this.notify();
    try {
      while (this.#slot?.chunk === chunk) await this.changed(signal);
    } catch (error) {
      this.#drop();
      throw error;
    }
  }

  protected override failed(): void {
    this.#drop();
  }

  release(): void {
    if (--this.holders > 0 || this.state !== 'running') return;
    this.controller.abort(new Error('no reader left'));
    // Never started (the reader left before reaching it): nothing will end it but this.
    if (this.#start) this.fail(this.controller.signal.reason);
  }

  /** Yields bytes [from, to] of the slice as they pass; each chunk's charge ends when the reader asks for the next. */
  async *read(from: number, to: number, signal: AbortSignal): AsyncGenerator<Buffer> {
    let next = from;
    const start = this.#start;
    this.#start = undefined;
    start?.();
    try {
      while (next <= to) {
        const slot = this.#slot;
        if (slot) {
          const start = Math.max(next, slot.offset) - slot.offset;
          const end = Math.min(to + 1, slot.offset + slot.chunk.length) - slot.offset;
          if (end > start) {
            yield slot.chunk.subarray(start, end);
            next = slot.offset + end;
          }
          this.#drop();
          this.notify();
          continue;
        }
        if (this.state === 'failed') throw this.error;
        if (this.state === 'done') throw new Error(`slice has ${this.received} bytes, reader wanted up to ${to}`);
        await this.changed(signal);
      }
    } finally {
      this.#drop();
      this.notify();
    }
  }

  #drop(): void {
    this.#slot?.charge.release();
    this.#slot = undefined;
  }
}
