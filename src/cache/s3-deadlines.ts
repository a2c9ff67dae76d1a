import type { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import { pipeline, Transform, type Readable } from 'node:stream';
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
 *   PUT's body included) to the response headers;
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
    const timer = setTimeout(() => deadline.abort(), firstByteMs);
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
      if (deadline.signal.aborted && !caller?.aborted) throw new S3DeadlineError('S3_FIRST_BYTE_TIMEOUT', 'no response headers', firstByteMs);
      // The only timeout the SDK's handler is given is the connect one.
      if ((error as Error)?.name === 'TimeoutError') throw new S3DeadlineError('S3_CONNECT_TIMEOUT', 'no connection', connectMs);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }
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
