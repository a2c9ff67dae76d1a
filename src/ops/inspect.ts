import { parseManifest, sliceCount, type Manifest } from '../cache/manifest.js';
import type { StoreTier } from '../cache/store-tier.js';
import { TubeError } from '../errors.js';
import { isVideoId, type VideoId } from '../origin/video-id.js';
import { forEachLimit, lastAccess, scanVideos, type StoredVideo } from './scan.js';
import type { VideoDetail, VideoInfo } from './video-info.js';

export type { VideoDetail, VideoInfo };

export type VideoSort = 'access' | 'size' | 'created';
export const VIDEO_SORTS: readonly VideoSort[] = ['access', 'size', 'created'];

/** Most recently read first; largest first; newest first. */
const ORDER: Record<VideoSort, (a: VideoInfo, b: VideoInfo) => number> = {
  access: (a, b) => b.lastAccess.localeCompare(a.lastAccess),
  size: (a, b) => b.bytes - a.bytes,
  created: (a, b) => (b.createdAt ?? '').localeCompare(a.createdAt ?? ''),
};

/** Reads the manifest whatever SLICE_BYTES it was written with (the service would ignore it, but it is in the bucket). */
async function readManifest(store: StoreTier, video: StoredVideo): Promise<Manifest | undefined> {
  if (!video.manifest) return undefined;
  const text = await store.getText(video.manifest.key);
  return text === undefined ? undefined : parseManifest(text, { id: video.id, format: video.format });
}

/** Sorted slice indices as inclusive runs, so a video of thousands of slices lists in a few pairs. */
function runs(indices: readonly number[]): [number, number][] {
  const ranges: [number, number][] = [];
  for (const index of [...indices].sort((a, b) => a - b)) {
    const last = ranges.at(-1);
    if (last && index === last[1] + 1) last[1] = index;
    else ranges.push([index, index]);
  }
  return ranges;
}

async function describe(store: StoreTier, video: StoredVideo): Promise<{ info: VideoInfo; manifest: Manifest | undefined }> {
  const manifest = await readManifest(store, video);
  const access = lastAccess(video);
  const present = new Map(video.slices.map((slice) => [slice.index, slice.size]));
  let contiguous = 0;
  for (let index = 0; present.has(index); index++) contiguous += present.get(index)!;
  const headSeconds = manifest?.duration ? Math.round((manifest.duration * Math.min(contiguous, manifest.size)) / manifest.size * 10) / 10 : null;
  return {
    manifest,
    info: {
      id: video.id,
      format: video.format,
      manifest: manifest ? 'ok' : video.manifest ? 'unreadable' : 'missing',
      size: manifest?.size ?? null,
      contentType: manifest?.contentType ?? null,
      duration: manifest?.duration ?? null,
      sliceBytes: manifest?.sliceBytes ?? null,
      totalSlices: manifest ? sliceCount(manifest) : null,
      persistedSlices: video.slices.length,
      persistedBytes: video.slices.reduce((n, slice) => n + slice.size, 0),
      persistedRanges: runs(video.slices.map((slice) => slice.index)),
      headSlices: manifest?.headSlices ?? null,
      headSeconds,
      objects: video.count,
      bytes: video.bytes,
      createdAt: manifest?.createdAt ?? null,
      lastAccess: new Date(access.at).toISOString(),
      lastAccessFrom: access.source,
    },
  };
}

async function describeAll(store: StoreTier, videos: readonly StoredVideo[], concurrency: number): Promise<VideoInfo[]> {
  const infos = new Array<VideoInfo>(videos.length);
  await forEachLimit(videos.keys(), concurrency, async (i) => {
    infos[i] = (await describe(store, videos[i]!)).info;
  });
  return infos;
}

/** A page cursor is the last video of the previous page: `id/format`. */
function startAfter(store: StoreTier, cursor: string): string {
  const [id, format, ...rest] = cursor.split('/');
  if (!id || !isVideoId(id) || !format || rest.length > 0 || !/^[A-Za-z0-9._+-]+$/.test(format)) throw new TubeError('BAD_REQUEST', 'cursor must be a value of nextCursor');
  // '0' sorts right after '/': past every key of this video, before the next format or id.
  return `${store.keys.videosRoot}${id}/${format}0`;
}

/**
 * Cached videos in key order, `limit` at a time; pass `nextCursor` back for the
 * next page. Only the listing pages a page needs are read, plus one manifest
 * per video shown.
 */
export async function listVideos(
  store: StoreTier,
  options: { cursor?: string; limit?: number; concurrency: number },
): Promise<{ videos: VideoInfo[]; nextCursor: string | null }> {
  const limit = options.limit ?? Infinity;
  const stored: StoredVideo[] = [];
  let more = false;
  for await (const video of scanVideos(store, options.cursor ? { startAfter: startAfter(store, options.cursor) } : {})) {
    if (stored.length === limit) {
      more = true;
      break;
    }
    stored.push(video);
  }
  const last = stored.at(-1);
  return { videos: await describeAll(store, stored, options.concurrency), nextCursor: more && last ? `${last.id}/${last.format}` : null };
}

/** Every cached video, sorted, at most `limit` (`tubecache ls`). */
export async function listAllVideos(store: StoreTier, options: { sort: VideoSort; limit?: number; concurrency: number }): Promise<VideoInfo[]> {
  const { videos } = await listVideos(store, { concurrency: options.concurrency });
  return videos.sort(ORDER[options.sort]).slice(0, options.limit ?? videos.length);
}

/** Everything the bucket holds about one id, per format (or of one format); empty when nothing. */
export async function statVideo(store: StoreTier, id: VideoId, format?: string): Promise<VideoDetail[]> {
  const details: VideoDetail[] = [];
  for await (const video of scanVideos(store, { prefix: store.keys.videoPrefix(id, format) })) {
    const { info, manifest } = await describe(store, video);
    const stored = new Set(video.slices.map((slice) => slice.index));
    const listed = new Set(manifest?.persisted ?? []);
    details.push({
      ...info,
      manifestBody: manifest ?? null,
      slices: video.slices
        .map((slice) => ({ index: slice.index, bytes: slice.size, lastModified: new Date(slice.lastModified).toISOString() }))
        .sort((a, b) => a.index - b.index),
      missingSlices: [...listed].filter((index) => !stored.has(index)),
      unlistedSlices: manifest ? [...stored].filter((index) => !listed.has(index)).sort((a, b) => a - b) : [],
    });
  }
  return details;
}
