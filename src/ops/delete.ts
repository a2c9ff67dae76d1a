import { PAGE_MAX } from '../cache/store.js';
import type { StoreTier } from '../cache/store-tier.js';
import type { VideoId } from '../origin/video-id.js';
import { collect, forEachLimit, objectsAfterManifest, scanVideos, type StoredObject, type StoredVideo } from './scan.js';

export interface DeleteFailure {
  key: string;
  message: string;
}

export interface DeleteResult {
  /** Videos no longer cached: their manifest is gone (some slices may have failed, see `failures`). */
  videos: StoredVideo[];
  objects: number;
  bytes: number;
  failures: DeleteFailure[];
}

/**
 * Deletes videos in two passes of DeleteObjects batches (≤1000 keys, at most
 * `concurrency` requests at once): every manifest first, then the slices and
 * access objects of the videos whose manifest is gone. A reader that loaded the
 * manifest before finds a slice missing and falls back to the origin; no reader
 * ever finds a manifest whose slices are half deleted.
 */
export async function deleteVideos(
  store: StoreTier,
  videos: readonly StoredVideo[],
  options: { concurrency: number; signal?: AbortSignal; onDeleted?: (objects: number) => void },
): Promise<DeleteResult> {
  const failures: DeleteFailure[] = [];
  let objects = 0;
  let bytes = 0;
  const deleteAll = async (list: readonly StoredObject[]): Promise<Set<string>> => {
    const failed = new Set<string>();
    const batches: StoredObject[][] = [];
    for (let i = 0; i < list.length; i += PAGE_MAX) batches.push(list.slice(i, i + PAGE_MAX));
    await forEachLimit(batches, options.concurrency, async (batch) => {
      options.signal?.throwIfAborted();
      const refused = await store.deleteKeys(batch.map((object) => object.key)).catch((error: Error) => batch.map(({ key }) => ({ key, message: error.message })));
      for (const failure of refused) failed.add(failure.key);
      failures.push(...refused);
      for (const object of batch) {
        if (failed.has(object.key)) continue;
        objects++;
        bytes += object.size;
      }
      options.onDeleted?.(objects);
    });
    return failed;
  };

  const manifestFailed = await deleteAll(videos.flatMap((video) => (video.manifest ? [video.manifest] : [])));
  const gone = videos.filter((video) => !video.manifest || !manifestFailed.has(video.manifest.key));
  await deleteAll(gone.flatMap(objectsAfterManifest));
  return { videos: gone, objects, bytes, failures };
}

/** Everything stored for these ids (every format, or the one named), manifests first; ids with nothing stored are `missing`. */
export async function removeVideos(store: StoreTier, ids: readonly VideoId[], options: { concurrency: number; format?: string | undefined }): Promise<DeleteResult & { missing: VideoId[] }> {
  const found: StoredVideo[] = [];
  const missing: VideoId[] = [];
  await forEachLimit(ids, options.concurrency, async (id) => {
    const videos = await collect(scanVideos(store, { prefix: store.keys.videoPrefix(id, options.format) }));
    if (videos.length === 0) missing.push(id);
    found.push(...videos);
  });
  return { ...(await deleteVideos(store, found, options)), missing };
}
