import { createHash } from 'node:crypto';
import type { VideoId } from '../origin/video-id.js';
import type { VideoRef, VideoRequest } from './keys.js';

/**
 * What the cache knows about one video (id + format): its size, type and
 * geometry, and which slices S3 holds. Every tier and every node reads the same
 * manifest, so the ETag and slice boundaries agree wherever a request lands.
 */
export interface Manifest {
  readonly version: 1;
  readonly id: VideoId;
  /** The format's name (its keys). */
  readonly format: string;
  /** The yt-dlp selector the bytes were resolved with; another selector for the name is another version. Absent in manifests written before named formats. */
  readonly selector: string | undefined;
  readonly contentType: string;
  readonly size: number;
  /** Seconds, when yt-dlp or the MP4 header told us. */
  readonly duration: number | undefined;
  /** The origin's `lmt` (last modified) when its URL had one: a new upload changes it. */
  readonly lmt: string | undefined;
  readonly sliceBytes: number;
  /** Slices 0 … headSlices-1 are persisted to S3 (all of them with PERSIST=full) until `head` is known. */
  readonly headSlices: number;
  /** The slices holding the first HEAD_SECONDS, once the first slice told (src/cache/head.ts); PERSIST=head only. */
  readonly head?: HeadPlan;
  /** Indexes of the slices S3 holds, ascending. */
  readonly persisted: readonly number[];
  readonly etag: string;
  readonly createdAt: string;
}

/** How the head was computed: from the MP4 index, or estimated from the bitrate. */
export interface HeadPlan {
  readonly method: 'index' | 'estimate';
  /** Ascending slice indexes. */
  readonly slices: readonly number[];
}

export const isHeadSlice = (manifest: Manifest, index: number): boolean =>
  manifest.head ? manifest.head.slices.includes(index) : index < manifest.headSlices;

export const headSliceIndexes = (manifest: Manifest): readonly number[] =>
  manifest.head?.slices ?? Array.from({ length: manifest.headSlices }, (_, index) => index);

export function createManifest(video: VideoRequest, facts: { contentType: string; size: number; duration: number | undefined; lmt: string | undefined; sliceBytes: number; headSlices: number }): Manifest {
  const etag = `"${createHash('sha256').update(`${video.id}\n${video.format}\n${video.selector}\n${facts.size}\n${facts.lmt ?? ''}`).digest('base64url').slice(0, 22)}"`;
  return { version: 1, id: video.id, format: video.format, selector: video.selector, ...facts, persisted: [], etag, createdAt: new Date().toISOString() };
}

export const sliceCount = (manifest: Manifest): number => Math.ceil(manifest.size / manifest.sliceBytes);

/** Byte range [start, end] (inclusive) of slice `index`. */
export function sliceBounds(manifest: Pick<Manifest, 'size' | 'sliceBytes'>, index: number): { start: number; end: number; length: number } {
  const start = index * manifest.sliceBytes;
  const end = Math.min(start + manifest.sliceBytes, manifest.size) - 1;
  return { start, end, length: end - start + 1 };
}

/**
 * How many slices hold the first `headSeconds` of the video. The byte length of
 * N seconds is estimated from the average bitrate; without a duration, `headBytes`.
 */
export function headSliceCount(options: { size: number; sliceBytes: number; duration: number | undefined; headSeconds: number; headBytes: number; full: boolean }): number {
  const total = Math.ceil(options.size / options.sliceBytes);
  if (options.full) return total;
  const bytes = options.duration && options.duration > 0 ? (options.size * options.headSeconds) / options.duration : options.headBytes;
  return Math.min(total, Math.max(1, Math.ceil(bytes / options.sliceBytes)));
}

export const withPersisted = (manifest: Manifest, persisted: Iterable<number>): Manifest => ({
  ...manifest,
  persisted: [...new Set([...manifest.persisted, ...persisted])].sort((a, b) => a - b),
});

/** Our copy of a version over the stored one (another node may have written since): the slices both recorded, our head plan if we have one. */
export const mergeManifest = (stored: Manifest, ours: Manifest): Manifest =>
  withPersisted(ours.head || !stored.head ? ours : { ...ours, head: stored.head, duration: stored.duration, headSlices: stored.headSlices }, stored.persisted);

/**
 * Parses a manifest read from S3; anything malformed, or from another slice size
 * or selector when `sliceBytes` or `selector` is given (the service's), is
 * treated as absent: the service then makes a new version over it.
 */
export function parseManifest(text: string, expected: VideoRef & { sliceBytes?: number; selector?: string }): Manifest | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const m = value as Record<string, unknown>;
  const ok =
    m.version === 1 &&
    m.id === expected.id &&
    m.format === expected.format &&
    (expected.selector === undefined || m.selector === expected.selector) &&
    (expected.sliceBytes === undefined ? Number.isSafeInteger(m.sliceBytes) && (m.sliceBytes as number) > 0 : m.sliceBytes === expected.sliceBytes) &&
    typeof m.contentType === 'string' &&
    Number.isSafeInteger(m.size) && (m.size as number) > 0 &&
    Number.isSafeInteger(m.headSlices) &&
    Array.isArray(m.persisted) && m.persisted.every((i) => Number.isSafeInteger(i)) &&
    typeof m.etag === 'string' &&
    typeof m.createdAt === 'string';
  if (!ok) return undefined;
  const head = parseHead(m.head);
  return {
    version: 1,
    id: expected.id,
    format: m.format as string,
    selector: typeof m.selector === 'string' ? m.selector : undefined,
    contentType: m.contentType as string,
    size: m.size as number,
    duration: typeof m.duration === 'number' ? m.duration : undefined,
    lmt: typeof m.lmt === 'string' ? m.lmt : undefined,
    sliceBytes: m.sliceBytes as number,
    headSlices: m.headSlices as number,
    ...(head && { head }),
    persisted: m.persisted as number[],
    etag: m.etag as string,
    createdAt: m.createdAt as string,
  };
}

function parseHead(value: unknown): HeadPlan | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { method, slices } = value as Record<string, unknown>;
  const ok = (method === 'index' || method === 'estimate') && Array.isArray(slices) && slices.every((i) => Number.isSafeInteger(i) && i >= 0);
  return ok ? { method, slices: slices as number[] } : undefined;
}
