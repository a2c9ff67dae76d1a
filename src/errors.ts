/**
 * Every error tubecache answers with comes from this one table: a stable code,
 * the HTTP status, and whether its message may be shown to clients (5xx bodies
 * never carry internals; the log does).
 */
export const ERRORS = {
  INVALID_VIDEO_ID: { status: 400, message: 'video id must match ^[A-Za-z0-9_-]{11}$' },
  UNKNOWN_FORMAT: { status: 400, message: 'unknown format (see FORMATS)' },
  BAD_REQUEST: { status: 400, message: 'bad request' },
  UNAUTHORIZED: { status: 401, message: 'missing bearer token' },
  FORBIDDEN: { status: 403, message: 'wrong bearer token' },
  NOT_FOUND: { status: 404, message: 'not found' },
  VIDEO_UNAVAILABLE: { status: 404, message: 'video unavailable' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed (see Allow)' },
  PRECONDITION_FAILED: { status: 412, message: 'conditional write refused: the object changed' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'request body too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'request body must be application/json' },
  RANGE_NOT_SATISFIABLE: { status: 416, message: 'range not satisfiable' },
  PREFETCH_QUEUE_FULL: { status: 429, message: 'too many prefetches waiting (PREFETCH_BACKLOG)', retryAfter: 5 },
  INTERNAL: { status: 500, message: 'internal error' },
  YTDLP_FAILED: { status: 502, message: 'yt-dlp failed to resolve the video' },
  ORIGIN_FAILED: { status: 502, message: 'origin request failed' },
  ORIGIN_FORBIDDEN: { status: 502, message: 'origin refused the request after a fresh resolution' },
  ORIGIN_HOST_NOT_ALLOWED: { status: 502, message: 'resolved media host is not in ORIGIN_ALLOWED_HOSTS' },
  ORIGIN_CHANGED: { status: 502, message: 'origin bytes changed (size or lmt) while fetching' },
  SLICE_CORRUPT: { status: 502, message: 'stored slice failed its integrity check' },
  YTDLP_MISSING: { status: 503, message: 'yt-dlp not found: set YTDLP_PATH to the yt-dlp executable', retryAfter: 60 },
  YTDLP_RESTRICTED: { status: 503, message: 'YouTube refused the resolution (sign-in, bot check or rate limit)', retryAfter: 60 },
  RESOLVE_QUEUE_FULL: { status: 503, message: 'too many videos resolving at once', retryAfter: 5 },
  STORE_ERROR: { status: 503, message: 'object store (disk or S3) request failed', retryAfter: 5 },
  YTDLP_TIMEOUT: { status: 504, message: 'yt-dlp did not answer within RESOLVE_TIMEOUT' },
  // Internal: the head falls back to the bitrate estimate; never an HTTP answer.
  MP4_MALFORMED: { status: 500, message: 'MP4 movie box cannot be indexed' },
} as const satisfies Record<string, ErrorSpec>;

/** A code's status and public message; 429s and 503s also say when to retry (seconds, sent as Retry-After). */
interface ErrorSpec {
  status: number;
  message: string;
  retryAfter?: number;
}

export type ErrorCode = keyof typeof ERRORS;

export class TubeError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Seconds a client should wait before retrying (429s and 503s): the table's, unless the cause knows better. */
  readonly retryAfter: number | undefined;

  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown; retryAfter?: number }) {
    super(detail ? `${ERRORS[code].message}: ${detail}` : ERRORS[code].message, { cause: options?.cause });
    this.name = 'TubeError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.retryAfter = options?.retryAfter ?? (ERRORS[code] as ErrorSpec).retryAfter;
  }

  /** What a client may see: the full message for 4xx and for errors that name their reason. */
  get publicMessage(): string {
    return this.status < 500 || EXPLAINED_5XX.has(this.code) ? this.message : ERRORS[this.code].message;
  }
}

/** 5xx codes whose detail is the upstream's reason (yt-dlp's own words), useful to the caller and free of internals. */
const EXPLAINED_5XX = new Set<ErrorCode>(['YTDLP_FAILED', 'YTDLP_RESTRICTED', 'YTDLP_MISSING']);

export const isTubeError = (error: unknown, code?: ErrorCode): error is TubeError =>
  error instanceof TubeError && (code === undefined || error.code === code);

/** A configuration value that cannot be used; start-up stops with this message. */
export class ConfigError extends Error {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
    this.variable = variable;
  }
}
