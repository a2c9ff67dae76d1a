/**
 * What `tubecache ls`/`stat` and the admin API show of a cached video. Types
 * only, importing no S3 code: `tubecache/client` shares them with the server
 * (so the two cannot drift apart) without its types pulling in the AWS SDK.
 */
import type { Manifest } from '../cache/manifest.js';
import type { VideoId } from '../origin/video-id.js';

/** Where a video's last access time came from (see `lastAccess` in scan.ts). */
export type AccessSource = 'access' | 'manifest' | 'objects';

/** One cached video as `tubecache ls` and `GET /admin/videos` show it. */
export interface VideoInfo {
  id: VideoId;
  format: string;
  /** 'missing': slices or an access object without a manifest (an upload in progress, or left behind). */
  manifest: 'ok' | 'missing' | 'unreadable';
  /** The video's size (from the manifest). */
  size: number | null;
  contentType: string | null;
  duration: number | null;
  sliceBytes: number | null;
  totalSlices: number | null;
  /** Slice objects in the store and their bytes (with their digest headers). */
  persistedSlices: number;
  /** Which slices the store holds, as inclusive index ranges in order: `[[0, 3], [7, 7]]`. */
  persistedRanges: [number, number][];
  /** Slices 0 … headSlices-1 are the head the service persists (from the manifest). */
  headSlices: number | null;
  persistedBytes: number;
  /** Seconds from the start that the store holds without a gap (playback starts without the origin). */
  headSeconds: number | null;
  /** Every object of the video, manifest and access object included. */
  objects: number;
  bytes: number;
  createdAt: string | null;
  lastAccess: string;
  lastAccessFrom: AccessSource;
}

/** `stat`: the listing's view plus the manifest itself and each slice object. */
export interface VideoDetail extends VideoInfo {
  manifestBody: Manifest | null;
  slices: { index: number; bytes: number; lastModified: string }[];
  /** In the manifest's `persisted` but absent from the store (readers fall back to the origin). */
  missingSlices: number[];
  /** In the store but not in the manifest (uploaded, manifest not yet rewritten; or left behind). */
  unlistedSlices: number[];
}
