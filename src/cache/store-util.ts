import { TubeError } from '../errors.js';
import type { PutOptions } from './store.js';

/** A put's body as one Buffer (stores that need the length first); aborts with `signal`. */
export async function collectBody(body: Buffer | AsyncIterable<Buffer>, signal: AbortSignal | undefined): Promise<Buffer> {
  if (Buffer.isBuffer(body)) return body;
  const chunks: Buffer[] = [];
  for await (const chunk of body) {
    signal?.throwIfAborted();
    chunks.push(chunk);
  }
  signal?.throwIfAborted();
  return Buffer.concat(chunks);
}

/** Throws PRECONDITION_FAILED unless a put with these options may replace an object whose etag is `current` (undefined: absent). */
export function checkConditions(key: string, current: string | undefined, options: Pick<PutOptions, 'ifNoneMatch' | 'ifMatch'>): void {
  if (options.ifNoneMatch === '*' && current !== undefined) throw new TubeError('PRECONDITION_FAILED', `${key} exists`);
  if (options.ifMatch !== undefined && current !== options.ifMatch) throw new TubeError('PRECONDITION_FAILED', `${key} is ${current ?? 'absent'}, not ${options.ifMatch}`);
}

/** Buffers as a body (a stored slice is its header then its bytes, without concatenating them). */
export async function* bodyOf(...parts: Buffer[]): AsyncGenerator<Buffer> {
  for (const part of parts) if (part.length) yield part;
}

/** The bytes of `source` after its first `count` (a read that resumes where another tier stopped). */
export async function* skipBytes(source: AsyncIterable<Buffer>, count: number): AsyncGenerator<Buffer> {
  let skip = count;
  for await (const chunk of source) {
    if (skip >= chunk.length) {
      skip -= chunk.length;
      continue;
    }
    yield skip ? chunk.subarray(skip) : chunk;
    skip = 0;
  }
}

export interface Boundary {
  <T>(what: string, run: () => Promise<T>, missIsOk: true): Promise<T | undefined>;
  <T>(what: string, run: () => Promise<T>, missIsOk?: false): Promise<T>;
}

/**
 * A store's error boundary: runs one native operation; a miss (`isMiss`) is
 * undefined where the caller allows it, any other error what `translate` makes of it.
 */
export function errorBoundary(isMiss: (error: unknown) => boolean, translate: (what: string, error: unknown) => Error): Boundary {
  return (async <T>(what: string, run: () => Promise<T>, missIsOk = false): Promise<T | undefined> => {
    try {
      return await run();
    } catch (error) {
      if (missIsOk && isMiss(error)) return undefined;
      throw translate(what, error);
    }
  }) as Boundary;
}
