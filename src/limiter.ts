/**
 * Runs at most `concurrency` tasks at once, with at most `maxQueued` waiting.
 * Work over the limit is refused (`tryRun` returns undefined) rather than
 * queued without bound: the caller decides whether that is a drop or a 503.
 */
export class Limiter {
  #active = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(readonly concurrency: number, readonly maxQueued: number) {}

  get active(): number {
    return this.#active;
  }
  get queued(): number {
    return this.#waiting.length;
  }

  tryRun<T>(task: () => Promise<T>): Promise<T> | undefined {
    if (this.#active < this.concurrency) {
      this.#active++;
      return this.#run(task);
    }
    if (this.#waiting.length >= this.maxQueued) return undefined;
    return new Promise<void>((resolve) => this.#waiting.push(resolve)).then(() => this.#run(task));
  }

  async #run<T>(task: () => Promise<T>): Promise<T> {
    try {
      return await task();
    } finally {
      // Hand the slot straight to the next waiter so no newcomer can overtake it.
      const next = this.#waiting.shift();
      if (next) next();
      else this.#active--;
    }
  }

  /** Resolves when nothing runs or waits (shutdown, tests). */
  async idle(): Promise<void> {
    while (this.#active > 0 || this.#waiting.length > 0) await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
