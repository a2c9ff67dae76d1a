import { LRUCache } from 'lru-cache';
import type { ErrorCode } from '../errors.js';
import type { Resolvable } from './format.js';

/** What yt-dlp told us about one video's media: where to fetch it and with which headers. */
export interface Resolution {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly filesize: number | undefined;
  readonly duration: number | undefined;
  /** When tubecache stops using the URL (its expire= less RESOLVE_MARGIN). */
  readonly expiresAt: number;
}

/** Resolutions are a few hundred bytes; this many bounds them to a few MiB. */
const MAX_ENTRIES = 10_000;

/** What yt-dlp answered for a video and format: a resolution until its URL expires, or a refusal for NEGATIVE_TTL. */
type Answer = { resolution: Resolution; refusal?: undefined } | { resolution?: undefined; refusal: { code: ErrorCode; detail: string } };

/**
 * yt-dlp's answers, kept apart from the slice LRU (a burst of slices must not
 * evict the resolutions that fetch them), keyed by video and format selector,
 * bounded in count, each entry with its own TTL.
 */
export class ResolutionCache {
  readonly #lru = new LRUCache<string, Answer>({ max: MAX_ENTRIES, ttlAutopurge: false });

  get(video: Resolvable): Answer | undefined {
    return this.#lru.get(resolvableKey(video));
  }

  setResolution(video: Resolvable, resolution: Resolution, ttlMs: number): void {
    this.#lru.set(resolvableKey(video), { resolution }, { ttl: Math.max(1, ttlMs) });
  }

  setRefusal(video: Resolvable, refusal: { code: ErrorCode; detail: string }, ttlMs: number): void {
    this.#lru.set(resolvableKey(video), { refusal }, { ttl: Math.max(1, ttlMs) });
  }

  delete(video: Resolvable): void {
    this.#lru.delete(resolvableKey(video));
  }
}

/** One key per video and selector (a video id never holds a newline). */
export const resolvableKey = (video: Resolvable): string => `${video.id}\n${video.selector}`;
