import { freeNow } from '../free-now.js';

/**
 * Pass-through chunks may use this share of the budget that kept slices may
 * not, so stream-through readers (one 16–64 KiB chunk each) find room for
 * their next chunk while every kept slice is held: a quarter of 100 MiB is
 * room for 400 readers.
 */
const PASS_THROUGH_SHARE = 4;
/**
 * The bytes of one slice Buffer (or one pass-through chunk) charged to the
 * budget. Every holder (a fill, the memory LRU, a reader, an upload) takes a
 * hold; the bytes return to the budget when the last one lets go, so a Buffer
 * shared by several holders is charged once.
 */
export class Charge {
  #holders = 1;
  #bytes: number;
  /** A released slice Buffer this charge took over from the pool, until `allocate` uses it. */
  #recycled: Buffer | undefined;
  #buffer: Buffer | undefined;
  readonly #free: (bytes: number, buffer?: Buffer) => void;
  readonly #loosened: () => void;

  constructor(bytes: number, free: (bytes: number, buffer?: Buffer) => void, loosened: () => void, recycled?: Buffer) {
    this.#bytes = bytes;
    this.#free = free;
    this.#loosened = loosened;
    this.#recycled = recycled;
  }

  /** The slice's Buffer (uninitialised): a pooled one when it has the length. Given back to the pool when the last holder lets go. */
  allocate(length: number): Buffer {
    const recycled = this.#recycled;
    this.#recycled = undefined;
    this.#buffer = recycled?.length === length ? recycled : Buffer.allocUnsafe(length);
    // Taken over from the pool but of another length (a charge shrunk to a short last slice): nobody else has it.
    if (recycled && recycled !== this.#buffer) freeNow(recycled);
    return this.#buffer;
  }

  get bytes(): number {
    return this.#bytes;
  }
  get holders(): number {
    return this.#holders;
  }

  hold(): this {
    if (this.#holders === 0) throw new Error('a released charge cannot be held again');
    this.#holders++;
    return this;
  }

  release(): void {
    if (this.#holders === 0) return;
    if (--this.#holders === 0) {
      const buffer = this.#buffer ?? this.#recycled;
      // Forgotten here: a charge still named somewhere (a stale handle) must not keep the memory alive.
      this.#buffer = this.#recycled = undefined;
      this.#free(this.#bytes, buffer);
    }
    // One holder left may be the memory LRU alone: the bytes became reclaimable.
    else this.#loosened();
  }

  /** A charge taken before the length was known (a new video's first slice) gives back what it does not need. */
  shrink(bytes: number): void {
    if (bytes >= this.#bytes || this.#holders === 0) return;
    const spare = this.#bytes - bytes;
    this.#bytes = bytes;
    this.#free(spare);
  }
}

interface Waiter {
  readonly bytes: number;
  readonly limit: number;
  grant(charge: Charge): void;
}

/**
 * MEMORY_CACHE_BYTES as one count of every slice byte alive in the process:
 * cached, being filled, held by readers, passing through, waiting for upload.
 * A charge that does not fit first asks `reclaim` (the memory tier) to drop
 * cached slices nobody holds; what still does not fit is refused (the fill
 * streams through instead) or waits for a release. `live` never exceeds `maxBytes`.
 */
export class SliceBudget {
  readonly maxBytes: number;
  /** The most kept slices may use; the rest is for pass-through chunks. */
  readonly keepLimit: number;
  #live = 0;
  #serving = false;
  #reclaiming = false;
  /**
   * Released Buffers of `#poolSize` bytes kept for the next slice, counted in
   * `live` and the first to go when room is needed (so the budget bounds them).
   * A Buffer let go lingers, uncounted, until V8 collects it (hundreds of MB
   * a minute under churn, and the allocator keeps the pages after); reused, it
   * costs nothing more.
   */
  readonly #pool: Buffer[] = [];
  readonly #poolSize: number;
  #reclaim: (bytes: number) => void = () => {};
  readonly #waiters: Waiter[] = [];

  /** `sliceBytes`: the size of the Buffers worth pooling (SLICE_BYTES; 0: none). */
  constructor(maxBytes: number, sliceBytes = 0) {
    this.maxBytes = maxBytes;
    this.#poolSize = sliceBytes;
    this.keepLimit = maxBytes - Math.floor(maxBytes / PASS_THROUGH_SHARE);
  }

  get live(): number {
    return this.#live;
  }
  /** The part of `live` that is released Buffers waiting for reuse. */
  get pooled(): number {
    return this.#pool.length * this.#poolSize;
  }

  /** Who frees unheld bytes on demand: called with the bytes missing, it releases what it can (oldest first). */
  reclaimWith(reclaim: (bytes: number) => void): void {
    this.#reclaim = reclaim;
  }

  /** A slice to keep: charged when it fits under `keepLimit` (after reclaiming), else undefined. */
  tryCharge(bytes: number): Charge | undefined {
    return this.#waiters.length === 0 && this.#fits(bytes, this.keepLimit) ? this.#take(bytes) : undefined;
  }

  /**
   * Waits for room (first come, first served) until `signal` aborts: a
   * pass-through chunk (`keep` false) may use the whole budget, a slice to keep
   * only `keepLimit`. Bytes that could never fit are refused at once.
   */
  charge(bytes: number, signal: AbortSignal, keep = false): Promise<Charge> {
    const limit = keep ? this.keepLimit : this.maxBytes;
    if (bytes > limit) return Promise.reject(new RangeError(`${bytes} bytes can never fit a budget of ${limit}`));
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.#waiters.length === 0 && this.#fits(bytes, limit)) return Promise.resolve(this.#take(bytes));
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(signal.reason);
      };
      const waiter: Waiter = {
        bytes,
        limit,
        grant: (charge) => {
          signal.removeEventListener('abort', onAbort);
          resolve(charge);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /** Whether `bytes` fit under `limit`, after dropping pooled Buffers and then (when `reclaim`) cached slices nobody holds. */
  #fits(bytes: number, limit: number, reclaim = true): boolean {
    // A charge of a pooled Buffer's size takes the Buffer over: nothing is added.
    const added = () => (bytes === this.#poolSize && this.#pool.length > 0 ? 0 : bytes);
    while (this.#live + added() > limit && this.#pool.length > 0) {
      freeNow(this.#pool.pop()!);
      this.#live -= this.#poolSize;
    }
    if (this.#live + added() > limit && reclaim) {
      this.#reclaiming = true;
      try {
        this.#reclaim(this.#live + added() - limit);
      } finally {
        this.#reclaiming = false;
      }
    }
    return this.#live + added() <= limit;
  }

  #take(bytes: number): Charge {
    let recycled: Buffer | undefined;
    if (bytes === this.#poolSize && this.#pool.length > 0) {
      recycled = this.#pool.pop();
      this.#live -= this.#poolSize;
    }
    this.#live += bytes;
    return new Charge(
      bytes,
      (freed, buffer) => this.#free(freed, buffer),
      () => this.#serve(),
      recycled,
    );
  }

  #free(bytes: number, buffer?: Buffer): void {
    // Not while reclaiming: the room asked for is room in the budget, not in the pool.
    const pool = buffer !== undefined && bytes === this.#poolSize && buffer.length === bytes && !this.#reclaiming;
    if (pool) this.#pool.push(buffer);
    else {
      // Nobody holds it (every reader and upload has let go): its memory goes now, not at a GC.
      if (buffer) freeNow(buffer);
      this.#live -= bytes;
    }
    this.#serve();
  }

  /** Grants waiters in order; one that does not fit yet does not hold back smaller ones behind it. Reclaims once per pass. */
  #serve(): void {
    if (this.#serving || this.#waiters.length === 0) return;
    this.#serving = true;
    try {
      let reclaimed = false;
      for (let at = 0; at < this.#waiters.length; ) {
        const waiter = this.#waiters[at]!;
        const fits = this.#fits(waiter.bytes, waiter.limit, !reclaimed);
        reclaimed ||= !fits;
        if (!fits) {
          at++;
          continue;
        }
        this.#waiters.splice(at, 1);
        waiter.grant(this.#take(waiter.bytes));
      }
    } finally {
      this.#serving = false;
    }
  }
}
