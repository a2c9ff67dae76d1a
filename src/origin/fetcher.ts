import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { TubeError, isTubeError } from '../errors.js';
import { freeNow } from '../free-now.js';
import type { Metrics } from '../metrics.js';
import { hostMatches } from './hosts.js';
import type { Resolvable } from './format.js';
import type { Resolution, Resolver } from './resolver.js';

export interface OriginFacts {
  readonly size: number;
  readonly contentType: string;
  readonly lmt: string | undefined;
}

/**
 * Where fetched bytes go: the facts once (first response), then every chunk in
 * order. A chunk is the sink's until `push` returns (or its promise settles):
 * what the sink keeps, it copies; the chunk's memory is then given back.
 */
export interface RangeSink {
  onFacts?(facts: OriginFacts): void;
  push(chunk: Buffer): void | Promise<void>;
}

/** A failed attempt, and whether trying again (same offset) may help. */
class AttemptError extends Error {
  constructor(message: string, readonly kind: 'retry' | 'forbidden' | 'fatal', readonly status?: number) {
    super(message);
  }
}

const MAX_REDIRECTS = 3;
const BACKOFF_MS = 200;

/**
 * Fetches byte ranges of a resolved video from its media host the way YouTube's
 * servers want: one slice (at most ORIGIN_MAX_RANGE) per request, `range=` in the
 * query for googlevideo, the signed URL re-resolved once on 403/410, and 5xx,
 * resets and timeouts retried from the exact byte already delivered.
 */
export class OriginFetcher {
  readonly #config: Config;
  readonly #resolver: Resolver;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #http: HttpAgent;
  readonly #https: HttpsAgent;

  constructor(options: { config: Config; resolver: Resolver; metrics: Metrics; logger: Logger }) {
    this.#config = options.config;
    this.#resolver = options.resolver;
    this.#metrics = options.metrics;
    this.#log = options.logger;
    const agentOptions = { keepAlive: true, maxSockets: this.#config.ORIGIN_MAX_SOCKETS, scheduling: 'lifo' as const };
    this.#http = new HttpAgent(agentOptions);
    this.#https = new HttpsAgent(agentOptions);
  }

  close(): void {
    this.#http.destroy();
    this.#https.destroy();
  }

  /**
   * Delivers bytes [start, end] of the video to `sink` (end is clamped to the
   * size once known). `expected` is what the manifest says; a different size or
   * lmt means the video changed and fails with ORIGIN_CHANGED.
   */
  async fetch(video: Resolvable, start: number, end: number, sink: RangeSink, signal: AbortSignal, expected?: { size: number; lmt: string | undefined }): Promise<void> {
    let offset = start;
    let last = expected ? Math.min(end, expected.size - 1) : end;
    let knownSize = expected?.size;
    let factsSent = false;
    let reResolved = false;
    let retries = 0;
    const state = {
      push: (chunk: Buffer) => {
        offset += chunk.length;
        this.#metrics.originBytes.inc(chunk.length);
        return sink.push(chunk);
      },
    };

    while (offset <= last) {
      const resolution = await this.#resolver.resolve(video);
      const size = knownSize ?? resolution.filesize ?? clen(resolution.url);
      if (size !== undefined) last = Math.min(last, size - 1);
      if (offset > last) break;
      const requestEnd = Math.min(last, offset + this.#config.ORIGIN_MAX_RANGE - 1);
      try {
        await this.#attempt(resolution, offset, requestEnd, size, signal, (facts) => {
          if (expected && (facts.size !== expected.size || (expected.lmt && facts.lmt && facts.lmt !== expected.lmt))) {
            throw new TubeError('ORIGIN_CHANGED', `manifest has ${expected.size} bytes lmt ${expected.lmt}, origin ${facts.size} lmt ${facts.lmt}`);
          }
          knownSize = facts.size;
          last = Math.min(last, facts.size - 1);
          if (!factsSent) {
            factsSent = true;
            sink.onFacts?.(facts);
          }
          return Math.min(requestEnd, facts.size - 1);
        }, state.push);
        this.#metrics.originRequests.inc({ outcome: 'ok' });
        retries = 0;
      } catch (error) {
        if (signal.aborted) throw signal.reason ?? error;
        if (isTubeError(error)) {
          this.#metrics.originRequests.inc({ outcome: error.code.toLowerCase() });
          throw error;
        }
        const attempt = error instanceof AttemptError ? error : new AttemptError((error as Error).message, 'retry');
        this.#metrics.originRequests.inc({ outcome: attempt.kind === 'forbidden' ? 'forbidden' : 'error' });
        this.#log.warn({ videoId: video.id, offset, status: attempt.status, reason: attempt.message }, 'origin request failed');
        if (attempt.kind === 'forbidden' && !reResolved) {
          // A signed URL that expired or is bound to another IP: resolve afresh, once.
          reResolved = true;
          this.#resolver.invalidate(video);
          continue;
        }
        if (attempt.kind === 'retry' && retries < this.#config.ORIGIN_RETRIES) {
          await sleep(BACKOFF_MS * 2 ** retries++, undefined, { signal });
          continue;
        }
        throw new TubeError(attempt.kind === 'forbidden' ? 'ORIGIN_FORBIDDEN' : 'ORIGIN_FAILED', `${attempt.message} at byte ${offset}`, { cause: error });
      }
    }
  }

  /** One request for [offset, requestEnd]; `onFacts` validates the response and returns the end actually expected. */
  async #attempt(
    resolution: Resolution,
    offset: number,
    requestEnd: number,
    knownSize: number | undefined,
    signal: AbortSignal,
    onFacts: (facts: OriginFacts) => number,
    push: (chunk: Buffer) => void | Promise<void>,
  ): Promise<void> {
    let url = new URL(resolution.url);
    for (let redirects = 0; ; redirects++) {
      this.#checkAllowed(url);
      // googlevideo throttles long Range-header downloads; it answers range= queries at full speed, with a 200.
      const queryRange = knownSize !== undefined && hostMatches(url.hostname, this.#config.ORIGIN_RANGE_QUERY_HOSTS);
      const target = new URL(url);
      if (queryRange) target.searchParams.set('range', `${offset}-${requestEnd}`);
      const headers: Record<string, string> = { ...resolution.headers, 'accept-encoding': 'identity' };
      if (!queryRange) headers.range = `bytes=${offset}-${requestEnd}`;

      const response = await this.#send(target, headers, signal);
      const status = response.statusCode ?? 0;
      if (status >= 300 && status < 400 && response.headers.location) {
        response.resume();
        if (redirects >= MAX_REDIRECTS) throw new AttemptError('too many redirects', 'fatal', status);
        url = new URL(response.headers.location, url);
        continue;
      }
      const lmt = url.searchParams.get('lmt') ?? undefined;
      let expectedEnd: number;
      try {
        expectedEnd = this.#validate(response, queryRange, offset, requestEnd, knownSize, lmt, onFacts);
      } catch (error) {
        response.destroy();
        throw error;
      }
      await this.#stream(response, offset, expectedEnd, push);
      return;
    }
  }

  #checkAllowed(url: URL): void {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TubeError('ORIGIN_HOST_NOT_ALLOWED', `scheme ${url.protocol}`);
    if (!hostMatches(url.hostname, this.#config.ORIGIN_ALLOWED_HOSTS)) throw new TubeError('ORIGIN_HOST_NOT_ALLOWED', url.hostname);
  }

  #send(url: URL, headers: Record<string, string>, signal: AbortSignal): Promise<IncomingMessage> {
    const config = this.#config;
    return new Promise((resolve, reject) => {
      const https = url.protocol === 'https:';
      const started = performance.now();
      // Not `signal` in the options: Node would bind it to the pooled keep-alive socket, which
      // then dies (with an unhandled error) when that signal aborts long after this request.
      const request = (https ? httpsRequest : httpRequest)(url, { headers, agent: https ? this.#https : this.#http });
      let response: IncomingMessage | undefined;
      const onAbort = () => {
        // A body already complete has handed its socket back to the pool: nothing to stop.
        if (!response?.complete) request.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      if (signal.aborted) onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      request.once('close', () => signal.removeEventListener('abort', onAbort));
      const firstByte = setTimeout(() => request.destroy(new AttemptError('no response headers within ORIGIN_FIRST_BYTE_TIMEOUT', 'retry')), config.ORIGIN_FIRST_BYTE_TIMEOUT);
      request.on('socket', (socket) => {
        if (!socket.connecting) return;
        const connect = setTimeout(() => request.destroy(new AttemptError('connect timeout (ORIGIN_CONNECT_TIMEOUT)', 'retry')), config.ORIGIN_CONNECT_TIMEOUT);
        socket.once('connect', () => clearTimeout(connect));
        socket.once('close', () => clearTimeout(connect));
      });
      // The socket's idle timer covers a body that stops mid-way.
      request.setTimeout(config.ORIGIN_IDLE_TIMEOUT, () => request.destroy(new AttemptError('idle timeout (ORIGIN_IDLE_TIMEOUT)', 'retry')));
      request.once('response', (incoming) => {
        clearTimeout(firstByte);
        this.#metrics.originFirstByteSeconds.observe((performance.now() - started) / 1000);
        response = incoming;
        resolve(incoming);
      });
      // `on`, not `once`: an abort after the response still emits here, and the body reports it.
      request.on('error', (error) => {
        clearTimeout(firstByte);
        reject(error);
      });
      request.once('close', () => clearTimeout(firstByte));
      request.end();
    });
  }

  /** Checks status and length before any byte is used; returns the inclusive end the body must reach. */
  #validate(
    response: IncomingMessage,
    queryRange: boolean,
    offset: number,
    requestEnd: number,
    knownSize: number | undefined,
    lmt: string | undefined,
    onFacts: (facts: OriginFacts) => number,
  ): number {
    const status = response.statusCode ?? 0;
    const fail = (message: string, kind: AttemptError['kind']) => new AttemptError(message, kind, status);
    if (status === 403 || status === 410) throw fail(`origin answered ${status}`, 'forbidden');
    if (status >= 500 || status === 429) throw fail(`origin answered ${status}`, 'retry');
    const contentType = String(response.headers['content-type'] ?? 'application/octet-stream');
    const length = Number(response.headers['content-length']);

    if (queryRange) {
      if (status !== 200) throw fail(`origin answered ${status} to a range= request`, 'fatal');
      const end = onFacts({ size: knownSize!, contentType, lmt });
      if (length !== end - offset + 1) throw fail(`origin sent ${length} bytes for range=${offset}-${end}`, 'retry');
      return end;
    }
    if (status !== 206) throw fail(`origin answered ${status} to a Range request`, 'fatal');
    const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(response.headers['content-range'] ?? ''));
    if (!range) throw fail(`bad Content-Range "${response.headers['content-range']}"`, 'fatal');
    const [first, lastByte, total] = [Number(range[1]), Number(range[2]), Number(range[3])];
    const end = onFacts({ size: total, contentType, lmt });
    if (first !== offset || lastByte !== Math.min(requestEnd, end) || (Number.isFinite(length) && length !== lastByte - first + 1)) {
      throw fail(`origin sent ${response.headers['content-range']} for bytes=${offset}-${requestEnd}`, 'retry');
    }
    return lastByte;
  }

  async #stream(response: IncomingMessage, offset: number, end: number, push: (chunk: Buffer) => void | Promise<void>): Promise<void> {
    let position = offset;
    try {
      for await (const chunk of response as AsyncIterable<Buffer>) {
        if (position + chunk.length > end + 1) throw new AttemptError(`origin sent more than ${end - offset + 1} bytes`, 'retry');
        position += chunk.length;
        // A pass-through reader takes one chunk at a time: the socket waits for it.
        await push(chunk);
        // The sinks copy what they keep (RangeSink).
        freeNow(chunk);
      }
    } catch (error) {
      response.destroy();
      throw error instanceof AttemptError || isTubeError(error) ? error : new AttemptError(`body: ${(error as Error).message}`, 'retry');
    }
    if (position !== end + 1) throw new AttemptError(`body ended at byte ${position} of ${end + 1}`, 'retry');
  }
}

/** googlevideo URLs carry the content length as clen=. */
function clen(url: string): number | undefined {
  const value = Number(new URL(url).searchParams.get('clen'));
  return Number.isSafeInteger(value) && value > 0 ? value : undefined;
}
