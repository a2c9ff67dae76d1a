/**
 * `tubecache/client`: what another service (a room server, a playlist API)
 * needs to use tubecache — player URLs, prefetch requests, and the admin view
 * of one video, in any of the server's named formats (FORMATS). It speaks HTTP
 * with the global `fetch`. Its only runtime imports (the video id and format
 * name checks, the limiter) import nothing but the error table, so an
 * installed client loads none of the server's dependencies (test/package).
 */
import type { Manifest } from './cache/manifest.js';
import type { ErrorCode } from './errors.js';
import { Limiter } from './limiter.js';
import type { VideoDetail } from './ops/video-info.js';
import { FORMAT_NAME_RULE, isFormatName } from './origin/format.js';
import { isVideoId, type VideoId } from './origin/video-id.js';

export { isFormatName, isVideoId, type VideoId };

export type ClientErrorCode =
  /** The id does not match ^[A-Za-z0-9_-]{11}$; nothing was sent. */
  | 'INVALID_VIDEO_ID'
  /** The format is not spelled as a name (^[a-z0-9][a-z0-9-]{0,31}$); nothing was sent. A well-spelled name the server does not know is its UNKNOWN_FORMAT (HTTP_ERROR 400). */
  | 'INVALID_FORMAT'
  /** No answer within `timeoutMs`. */
  | 'TIMEOUT'
  /** The connection failed (refused, reset, DNS). */
  | 'UNREACHABLE'
  /** tubecache answered with a status other than the one expected; see `status` and `serverCode`. */
  | 'HTTP_ERROR'
  /** A 2xx whose body is not the JSON the route documents. */
  | 'BAD_RESPONSE'
  /** `stat` needs the `adminToken` option. */
  | 'NO_ADMIN_TOKEN'
  /** Not sent: tubecache answered a prefetch 429 and its Retry-After has not passed yet (see `retryAfter`). */
  | 'BUSY';

export class TubecacheClientError extends Error {
  readonly code: ClientErrorCode;
  /** The HTTP status, for HTTP_ERROR and BAD_RESPONSE. */
  readonly status: number | undefined;
  /** tubecache's own error code from the `{ error: { code } }` body, when it sent one. */
  readonly serverCode: ErrorCode | undefined;
  /** Seconds to wait before retrying, from Retry-After (429s and 503s). */
  readonly retryAfter: number | undefined;

  constructor(code: ClientErrorCode, message: string, details: { status?: number; serverCode?: ErrorCode; retryAfter?: number; cause?: unknown } = {}) {
    super(message, { cause: details.cause });
    this.name = 'TubecacheClientError';
    this.code = code;
    this.status = details.status;
    this.serverCode = details.serverCode;
    this.retryAfter = details.retryAfter;
  }
}

/** pino's `logger.warn(object, message)` shape, so a pino logger (or a child of one) can be passed as is. */
export interface ClientLogger {
  warn(details: object, message: string): void;
}

export interface TubecacheClientOptions {
  /** Where this service reaches tubecache: a node, or the nginx edge. */
  baseUrl: string;
  /** Where players reach it, when that differs (an internal address for prefetch, a public one for `<video src>`). Default: baseUrl. */
  publicUrl?: string;
  /** Per request. Default 5000: prefetch is answered (202) before any video work starts, so only a sick node is slower. */
  timeoutMs?: number;
  /** Bearer token of the admin API, for `stat`. */
  adminToken?: string;
  /** Failed prefetches are reported here. Default: console.warn. */
  logger?: ClientLogger;
  /** How many queued videos `prefetchUpcoming` warms (the PREFETCH_QUEUE_DEPTH policy). Default 2. */
  prefetchQueueDepth?: number;
  /** Prefetch requests `prefetchMany` keeps in flight at once. Default 4. */
  prefetchConcurrency?: number;
}

/** Which of the server's named formats (FORMATS: `video`, `audio`…); absent: the server's default. */
export interface FormatOption {
  format?: string;
}

export type PrefetchResult = { ok: true; id: string } | { ok: false; id: string; error: TubecacheClientError };

/**
 * `GET /admin/videos/:id` (src/http/admin.ts): the video in S3, one entry per
 * stored format (only the asked one with `format`), and what the answering node
 * holds in memory of the asked (else the default) format. Its parts are
 * the server's own types, so the two cannot drift apart.
 */
export interface VideoStat {
  id: string;
  s3: VideoDetail[];
  memory: { format: string; manifest: Manifest; slices: number[] } | null;
}

export const DEFAULT_TIMEOUT_MS = 5000;
export const DEFAULT_PREFETCH_QUEUE_DEPTH = 2;
const DEFAULT_PREFETCH_CONCURRENCY = 4;
/** How long prefetches pause after a 429 that carries no usable Retry-After (a proxy in between). */
const DEFAULT_BUSY_SECONDS = 1;

const consoleLogger: ClientLogger = { warn: (details, message) => console.warn(`tubecache client: ${message}`, details) };

export class TubecacheClient {
  readonly baseUrl: string;
  readonly publicUrl: string;
  readonly timeoutMs: number;
  readonly prefetchQueueDepth: number;
  readonly #adminToken: string | undefined;
  readonly #logger: ClientLogger;
  readonly #prefetchConcurrency: number;
  /** After a 429, prefetches are not sent before this time (ms since the epoch). */
  #prefetchPausedUntil = 0;

  constructor(options: TubecacheClientOptions) {
    this.baseUrl = withoutTrailingSlash(options.baseUrl);
    this.publicUrl = withoutTrailingSlash(options.publicUrl ?? options.baseUrl);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.prefetchQueueDepth = options.prefetchQueueDepth ?? DEFAULT_PREFETCH_QUEUE_DEPTH;
    this.#adminToken = options.adminToken || undefined;
    this.#logger = options.logger ?? consoleLogger;
    this.#prefetchConcurrency = options.prefetchConcurrency ?? DEFAULT_PREFETCH_CONCURRENCY;
    if (!Number.isSafeInteger(this.prefetchQueueDepth) || this.prefetchQueueDepth < 0) throw new RangeError(`prefetchQueueDepth must be a whole number ≥ 0, got ${options.prefetchQueueDepth}`);
  }

  /** The URL a player puts in `<video src>` (or `<audio src>` with `{ format: 'audio' }`). Throws INVALID_VIDEO_ID or INVALID_FORMAT: such a URL would only ever answer 400. */
  proxyUrl(id: string, options: FormatOption = {}): string {
    return `${this.publicUrl}/proxy/${checkedId(id)}${formatQuery(options)}`;
  }

  /**
   * Asks tubecache to warm the head of a video (memory and S3). Never rejects:
   * it runs inside message handlers, where a thrown error would break the
   * handler for a cache that is only an optimisation. Failures are logged and
   * returned as `{ ok: false, error }`. A 429 (tubecache's prefetch queue is
   * full) is a soft failure: prefetches are then not sent until its
   * Retry-After has passed, and answer BUSY without being logged.
   */
  async prefetch(id: string, options: FormatOption = {}): Promise<PrefetchResult> {
    try {
      const path = `/prefetch/${checkedId(id)}${formatQuery(options)}`;
      const waitMs = this.#prefetchPausedUntil - Date.now();
      if (waitMs > 0) {
        return { ok: false, id, error: new TubecacheClientError('BUSY', `prefetch not sent: tubecache asked to wait ${Math.ceil(waitMs / 1000)} s more`, { retryAfter: Math.ceil(waitMs / 1000) }) };
      }
      const response = await this.#request('POST', path);
      await expectStatus(response, 202);
      await response.body?.cancel();
      return { ok: true, id };
    } catch (caught) {
      const error = asClientError(caught);
      if (error.status === 429) this.#prefetchPausedUntil = Date.now() + (error.retryAfter ?? DEFAULT_BUSY_SECONDS) * 1000;
      this.#logger.warn({ videoId: id, ...(options.format !== undefined && { format: options.format }), code: error.code, status: error.status, serverCode: error.serverCode, err: error }, 'prefetch failed');
      return { ok: false, id, error };
    }
  }

  /** Prefetches each distinct id, a few requests at a time; results are in the order of first appearance. Never rejects. */
  async prefetchMany(ids: Iterable<string>, options: FormatOption = {}): Promise<PrefetchResult[]> {
    const limiter = new Limiter(this.#prefetchConcurrency, Infinity);
    return Promise.all([...new Set(ids)].map((id) => limiter.tryRun(() => this.prefetch(id, options))!));
  }

  /**
   * The PREFETCH_QUEUE_DEPTH policy: warms the first `depth` videos of the
   * queue of upcoming videos (next first; not the one playing, which players
   * are already fetching). Call it whenever the queue changes: a video already
   * warm costs tubecache one manifest lookup and no origin traffic.
   */
  prefetchUpcoming(queue: readonly string[], depth = this.prefetchQueueDepth, options: FormatOption = {}): Promise<PrefetchResult[]> {
    return this.prefetchMany(queue.slice(0, Math.max(0, depth)), options);
  }

  /**
   * The admin API's view of one video. Rejects with a TubecacheClientError:
   * HTTP_ERROR 404 (serverCode NOT_FOUND) when the video is not cached — or when
   * the node runs without ADMIN_TOKEN, which mounts no admin API.
   */
  async stat(id: string, options: FormatOption = {}): Promise<VideoStat> {
    const path = `/admin/videos/${checkedId(id)}${formatQuery(options)}`;
    if (!this.#adminToken) throw new TubecacheClientError('NO_ADMIN_TOKEN', 'stat needs the adminToken option (the ADMIN_TOKEN of the tubecache nodes)');
    const response = await this.#request('GET', path, { Authorization: `Bearer ${this.#adminToken}` });
    await expectStatus(response, 200);
    const body: unknown = await response.json().catch((cause: unknown) => {
      throw new TubecacheClientError('BAD_RESPONSE', `GET ${path}: body is not JSON`, { status: response.status, cause });
    });
    if (typeof body !== 'object' || body === null || !Array.isArray((body as { s3?: unknown }).s3)) {
      throw new TubecacheClientError('BAD_RESPONSE', `GET ${path}: expected { id, s3: [...], memory }`, { status: response.status });
    }
    return body as VideoStat;
  }

  async #request(method: string, path: string, headers: Record<string, string> = {}): Promise<Response> {
    const url = this.baseUrl + path;
    try {
      return await fetch(url, { method, headers, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (cause) {
      if (cause instanceof DOMException && cause.name === 'TimeoutError') throw new TubecacheClientError('TIMEOUT', `${method} ${url}: no answer within ${this.timeoutMs} ms`, { cause });
      // undici says "fetch failed" and keeps the reason (ECONNREFUSED…) in `cause`.
      const reason = cause instanceof Error && cause.cause instanceof Error ? cause.cause.message : String((cause as Error)?.message ?? cause);
      throw new TubecacheClientError('UNREACHABLE', `${method} ${url}: ${reason}`, { cause });
    }
  }
}

export const createTubecacheClient = (options: TubecacheClientOptions) => new TubecacheClient(options);

function checkedId(id: string): VideoId {
  // typeof first: JavaScript callers can pass a number, which the regex would happily coerce.
  if (typeof id !== 'string' || !isVideoId(id)) throw new TubecacheClientError('INVALID_VIDEO_ID', `video id must match ^[A-Za-z0-9_-]{11}$, got ${JSON.stringify(String(id).slice(0, 64))}`);
  return id;
}

/** `?format=name`, or nothing for the server's default. */
function formatQuery({ format }: FormatOption): string {
  if (format === undefined) return '';
  if (typeof format !== 'string' || !isFormatName(format)) throw new TubecacheClientError('INVALID_FORMAT', `format must match ${FORMAT_NAME_RULE}, got ${JSON.stringify(String(format).slice(0, 64))}`);
  return `?format=${format}`;
}

/** Turns any other status into HTTP_ERROR, with tubecache's error code when the body carries one. */
async function expectStatus(response: Response, expected: number): Promise<void> {
  if (response.status === expected) return;
  const text = await response.text().catch(() => '');
  let serverCode: ErrorCode | undefined;
  let message = text.slice(0, 200);
  try {
    const error = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }).error;
    if (typeof error?.code === 'string') serverCode = error.code as ErrorCode;
    if (typeof error?.message === 'string') message = error.message;
  } catch {
    // Not tubecache's JSON (a proxy in between): the status and text say what there is to say.
  }
  const retryAfter = Number(response.headers.get('retry-after') ?? NaN);
  throw new TubecacheClientError('HTTP_ERROR', `${response.url}: ${response.status}${message ? ` ${message}` : ''}`, {
    status: response.status,
    ...(serverCode ? { serverCode } : {}),
    ...(Number.isFinite(retryAfter) ? { retryAfter } : {}),
  });
}

const asClientError = (error: unknown): TubecacheClientError =>
  error instanceof TubecacheClientError ? error : new TubecacheClientError('UNREACHABLE', (error as Error)?.message ?? String(error), { cause: error });

const withoutTrailingSlash = (url: string) => url.replace(/\/+$/, '');
