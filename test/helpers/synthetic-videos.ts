import { ObjectKeys } from '../../src/cache/keys.js';
import { createManifest, withPersisted } from '../../src/cache/manifest.js';
import type { VideoId } from '../../src/origin/video-id.js';

const FORMAT = '18';

export interface Synthetic {
  id: string;
  /** How long ago it was read; undefined: no access object (prune falls back to the manifest's LastModified, i.e. now). */
  age: number | undefined;
  manifest: boolean;
  slices: number;
}

export interface Seed {
  key: string;
  body: string;
  /** The object's LastModified, when not the time of the put. */
  modified?: number;
}

/** The objects of one synthetic video: a real manifest, tiny slices, an access object last modified at the time of last read. */
export function objectsOf(video: Synthetic, now: number, keys = new ObjectKeys('')): Seed[] {
  const ref = { id: video.id as VideoId, format: FORMAT, selector: '18/b' };
  const objects: Seed[] = [];
  const sliceBytes = 16;
  if (video.manifest) {
    const manifest = createManifest(ref, { contentType: 'video/mp4', size: sliceBytes * video.slices, duration: 10, lmt: undefined, sliceBytes, headSlices: video.slices });
    objects.push({ key: keys.manifest(ref), body: JSON.stringify(withPersisted(manifest, Array.from({ length: video.slices }, (_, i) => i))) });
  }
  for (let index = 0; index < video.slices; index++) objects.push({ key: keys.slice(ref, index), body: 'x'.repeat(sliceBytes) });
  if (video.age !== undefined) objects.push({ key: keys.access(ref), body: new Date(now - video.age).toISOString(), modified: now - video.age });
  return objects;
}

