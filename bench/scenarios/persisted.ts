import { setTimeout as sleep } from 'node:timers/promises';
import type { VideoRequest } from '../../src/cache/keys.js';
import type { Manifest } from '../../src/cache/manifest.js';
import type { Bench } from '../context.js';

/**
 * Waits until tubecache's manifest in S3 lists `slices` persisted slices (uploads run in the background).
 */
export async function waitForPersisted(bench: Bench, video: VideoRequest, slices: number, timeoutMs = 120_000): Promise<Manifest> {
  const deadline = Date.now() + timeoutMs;
  let manifest: Manifest | undefined;
  let failure: unknown;
  while (Date.now() < deadline) {
    try {
      manifest = await bench.store.getManifest(video, bench.config.SLICE_BYTES);
      if (manifest && manifest.persisted.length >= slices) return manifest;
    } catch (error) {
      failure = error;
    }
    await sleep(100);
  }
  const why = failure ? ` (last read failed: ${(failure as Error).message})` : '';
  throw new Error(`${video.id}: ${manifest?.persisted.length ?? 0} of ${slices} slices persisted after ${timeoutMs / 1000} s${why}`);
}
