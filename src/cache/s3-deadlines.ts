import type { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import { pipeline, Readable, Transform } from 'node:stream';
import { NodeHttpHandler } from '@smithy/node-http-handler';

/** The three deadlines every S3 request runs under (S3_CONNECT_TIMEOUT, S3_FIRST_BYTE_TIMEOUT, S3_IDLE_TIMEOUT). */
export interface S3Deadlines {
  connectMs: number;
  firstByteMs: number;
  idleMs: number;
}

type DeadlineSetting = 'S3_CONNECT_TIMEOUT' | 'S3_FIRST_BYTE_TIMEOUT' | 'S3_IDLE_TIMEOUT';

/**
 * A deadline fired. Not one of the SDK's retryable names (TimeoutError) on
 * purpose: an S3 that did not answer in time is presumed down, and a retry
 * would double the wait on the request path. S3Store turns it into STORE_ERROR,
 * which opens the window in which S3 is skipped.
 */
export class S3DeadlineError extends Error {
  readonly setting: DeadlineSetting;
  constructor(setting: DeadlineSetting, what: string, ms: number) {
    super(`${what} within ${ms} ms (${setting})`);
    this.name = 'S3DeadlineError';
    this.setting = setting;
  }
}

type Handle = NodeHttpHandler['handle'];

/**
 * The SDK's HTTP handler with deadlines that throw: its own `requestTimeout`
 * only logs unless told otherwise and nothing bounds a body that stops
 * mid-way, so a server that accepts connections and answers nothing (a
 * stopped process, a black-holed network) would hang every caller.
 *
 * - connect: the SDK's `connectionTimeout`, reported as S3_CONNECT_TIMEOUT;
 * - first byte: from the request's start (queueing for a socket and sending a
 *   PUT's body included) to the response headers; a streamed body's waits for
 *   its own next bytes (a slice still arriving from the origin) do not count;
 * - idle: between two chunks of the response body.
 */
export class DeadlineHttpHandler extends NodeHttpHandler {
  readonly #deadlines: S3Deadlines;

  constructor(deadlines: S3Deadlines, agents: { httpAgent: HttpAgent; httpsAgent: HttpsAgent }) {
    super({ connectionTimeout: deadlines.connectMs, ...agents });
    this.#deadlines = deadlines;
  }

  /** `options.requestTimeout` (from `client.send(command, { requestTimeout })`) replaces the first-byte deadline for a slow kind of request. */
  override async handle(...[request, options = {}]: Parameters<Handle>): ReturnType<Handle> {
    const { connectMs, idleMs } = this.#deadlines;
    const firstByteMs = options.requestTimeout ?? this.#deadlines.firstByteMs;
    const deadline = new AbortController();
    const caller = options.abortSignal as AbortSignal | undefined;
    const clock = new Clock(() => deadline.abort(), firstByteMs);
    let bodyFailure: unknown;
    let paced: Readable | undefined;
    if (request.body instanceof Readable) {
      request.body = paced = pacedBody(request.body, clock, (error) => {
        bodyFailure = error;
        deadline.abort(error);
      });
    }
    try {
      const { response } = await super.handle(request, {
        ...options,
        // Ours, not the SDK's (which would only log).
        requestTimeout: undefined,
        abortSignal: caller ? AbortSignal.any([caller, deadline.signal]) : deadline.signal,
      });
      response.body = idleDeadline(response.body as Readable, idleMs);
      return { response };
    } catch (error) {
      if (bodyFailure !== undefined) throw bodyFailure;
      if (deadline.signal.aborted && !caller?.aborted) throw new S3DeadlineError('S3_FIRST_BYTE_TIMEOUT', 'no response headers', firstByteMs);
      // The only timeout the SDK's handler is given is the connect one.
      if ((error as Error)?.name === 'TimeoutError') throw new S3DeadlineError('S3_CONNECT_TIMEOUT', 'no connection', connectMs);
      throw error;
    } finally {
      clock.end();
      // A request that failed mid-body lets go of the body's source.
      paced?.destroy();
    }
  }
}

/** The first-byte deadline: runs from `start` to `stop`, restarted by each `start`; `end` stops it for good. */
class Clock {
  #timer: NodeJS.Timeout | undefined;
  #ended = false;
  constructor(
    readonly fire: () => void,
    readonly ms: number,
  ) {
    this.start();
  }

  start(): void {
    clearTimeout(this.#timer);
    // A body still pulling after the request ended (it failed) must not arm a timer for nothing.
    if (!this.#ended) this.#timer = setTimeout(this.fire, this.ms);
  }

  stop(): void {
    clearTimeout(this.#timer);
  }

  end(): void {
    this.#ended = true;
    this.stop();
  }
}

/**
 * A streamed request body, read on demand: the clock stops while the body
 * waits for its own source and starts again when a chunk is handed to the
 * socket (S3 has to take it) or the body ends (S3 has to answer). A source
 * that fails calls `failed`, which aborts the request: a put with a short
 * body must never complete.
 */
function pacedBody(source: Readable, clock: Clock, failed: (error: unknown) => void): Readable {
  const chunks = source[Symbol.asyncIterator]();
  return new Readable({
    async read() {
      clock.stop();
      try {
        const next = await chunks.next();
        clock.start();
        this.push(next.done ? null : next.value);
      } catch (error) {
        // Reported through `failed`, not as an 'error' event: nothing listens for one on a piped body.
        failed(error);
        this.destroy();
      }
    },
    destroy(error, done) {
      void chunks.return?.();
      done(error);
    },
  });
}

/**
 * The body, failing with S3_IDLE_TIMEOUT when no chunk arrives for `idleMs`
 * while the reader waits for one. A reader that stops reading (a slice
 * streamed through to a slow client) stops the clock: the stall is its own.
 */
function idleDeadline(body: Readable, idleMs: number): Readable {
  const guarded = new Transform({
    transform(chunk, _encoding, done) {
      waiting = false;
      done(null, chunk);
    },
  });
  let waiting = true;
  const timer = setTimeout(() => waiting && guarded.destroy(new S3DeadlineError('S3_IDLE_TIMEOUT', 'no body bytes', idleMs)), idleMs);
  // _read runs when the reader wants more: the clock runs from then until a chunk arrives (refresh re-arms a timer that fired).
  const read = guarded._read.bind(guarded);
  guarded._read = (size) => {
    waiting = true;
    timer.refresh();
    read(size);
  };
  // Whatever ends the guarded stream (the end, a failure, a reader that leaves) destroys the socket's body with it.
  pipeline(body, guarded, () => clearTimeout(timer));
  return guarded;
}
