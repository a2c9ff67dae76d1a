import { isTubeError } from '../errors.js';
import { headRanges, locateMoov, slicesOf } from '../origin/mp4.js';
import { headSliceCount, type HeadPlan } from './manifest.js';

export interface HeadInput {
  /** The file's first bytes (its first slice). */
  readonly first: Buffer;
  readonly size: number;
  /** Seconds, for the estimate when the file cannot be indexed. */
  readonly duration: number | undefined;
  readonly sliceBytes: number;
  readonly headSeconds: number;
  /** The estimate's length without a duration. */
  readonly headBytes: number;
  /** File bytes [start, end), read through the cache so that they are whole slices it keeps. */
  readonly fetchRange: (start: number, end: number) => Promise<Buffer>;
}

/**
 * Which slices hold the first `headSeconds` of a video: from the MP4 index
 * when it can be read (the slices of the movie box, wherever it is, and of
 * every sample that decodes within `headSeconds` on every track, plus slice 0
 * where players start reading), else the bitrate estimate plus one slice of
 * margin. `reason` says why the index could not be used.
 */
export async function planHead(input: HeadInput): Promise<HeadPlan & { reason?: string }> {
  try {
    let location = locateMoov(input.first, 0, input.size);
    if (location.kind === 'fetch') {
      // One request for whole slices around the movie box (at the file's end when it is not faststart).
      const from = Math.floor(location.start / input.sliceBytes) * input.sliceBytes;
      const to = Math.min(input.size, Math.ceil(location.end / input.sliceBytes) * input.sliceBytes);
      const bytes = await input.fetchRange(from, to);
      location = locateMoov(bytes.subarray(location.start - from), location.start, input.size);
      if (location.kind !== 'found') return estimate(input, 'moov is not in the bytes that should hold it');
    }
    const slices = slicesOf(headRanges(location.box, location.offset, input.headSeconds, input.size), input.sliceBytes);
    return { method: 'index', slices: slices[0] === 0 ? slices : [0, ...slices] };
  } catch (error) {
    if (isTubeError(error, 'MP4_MALFORMED')) return estimate(input, error.message);
    if (error instanceof Error) return estimate(input, `the movie box could not be read: ${error.message}`);
    throw error;
  }
}

function estimate(input: HeadInput, reason: string): HeadPlan & { reason: string } {
  const total = Math.ceil(input.size / input.sliceBytes);
  const count = Math.min(total, 1 + headSliceCount({ ...input, full: false }));
  return { method: 'estimate', slices: Array.from({ length: count }, (_, index) => index), reason };
}
