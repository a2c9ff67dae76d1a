import { createHash } from 'node:crypto';
import { TubeError } from '../errors.js';

/**
 * A stored slice is a small header, then the slice's bytes in 64 KiB chunks,
 * each followed by its SHA-256. A reader checks each chunk as it arrives and
 * serves it at once: corruption is caught before a byte of the chunk leaves,
 * without waiting for the whole slice. A digest follows its chunk (rather than
 * all of them leading) so a writer can stream the object while the slice is
 * still arriving from the origin: the length is known up front, the digests
 * only as each chunk completes. Inside the object rather than in S3 metadata
 * (fixed before the body) or a sidecar (a second request before the first byte).
 *
 *   "TCS2" | header length u32 | chunk bytes u32 | slice length u32 |
 *   etag length u8 | etag (UTF-8) | (chunk | sha256) × ceil(length / chunk)
 */
const MAGIC = Buffer.from('TCS2');
const FIXED = 17;
const DIGEST = 32;
export const INTEGRITY_CHUNK = 64 * 1024;

export interface SliceIdentity {
  /** The manifest's ETag: bytes of another version are a miss, not corruption. */
  readonly etag: string;
  readonly length: number;
}

/** The stored object's size for a slice of `identity.length` bytes (what a streamed put declares first). */
export function storedSliceLength(identity: SliceIdentity, chunkBytes = INTEGRITY_CHUNK): number {
  return FIXED + Buffer.byteLength(identity.etag) + identity.length + Math.ceil(identity.length / chunkBytes) * DIGEST;
}

/**
 * The stored object for a slice whose bytes arrive as `bytes` (views, never
 * copied): the header, then each chunk followed by its digest as soon as the
 * chunk is complete. Throws when `bytes` ends short of or runs past the length.
 */
export async function* encodeSlice(bytes: AsyncIterable<Buffer>, identity: SliceIdentity, chunkBytes = INTEGRITY_CHUNK): AsyncGenerator<Buffer> {
  const tag = Buffer.from(identity.etag);
  const header = Buffer.allocUnsafe(FIXED + tag.length);
  MAGIC.copy(header, 0);
  header.writeUInt32BE(header.length, 4);
  header.writeUInt32BE(chunkBytes, 8);
  header.writeUInt32BE(identity.length, 12);
  header.writeUInt8(tag.length, 16);
  tag.copy(header, FIXED);
  yield header;
  let total = 0;
  let inChunk = 0;
  let hash = createHash('sha256');
  for await (let piece of bytes) {
    if (total + piece.length > identity.length) throw new Error(`slice of ${identity.length} bytes got ${total + piece.length}`);
    while (piece.length) {
      const part = piece.subarray(0, chunkBytes - inChunk);
      piece = piece.subarray(part.length);
      hash.update(part);
      yield part;
      total += part.length;
      inChunk += part.length;
      if (inChunk === chunkBytes || total === identity.length) {
        yield hash.digest();
        hash = createHash('sha256');
        inChunk = 0;
      }
    }
  }
  if (total !== identity.length) throw new Error(`slice ended at ${total} of ${identity.length} bytes`);
}

/**
 * Reads a stored slice: undefined when it is not this version's (another ETag
 * or length, or not a slice object at all); else its bytes, each chunk yielded
 * only after its digest matched. A mismatch or a short object throws
 * SLICE_CORRUPT; the bytes yielded before it were checked.
 */
export async function openSlice(stored: AsyncIterable<Buffer>, expected: SliceIdentity): Promise<AsyncGenerator<Buffer> | undefined> {
  const source = stored[Symbol.asyncIterator]();
  let buffered: Buffer = Buffer.alloc(0);
  const fill = async (bytes: number) => {
    while (buffered.length < bytes) {
      const next = await source.next();
      if (next.done) return false;
      buffered = buffered.length ? Buffer.concat([buffered, next.value]) : next.value;
    }
    return true;
  };
  if (!(await fill(FIXED)) || !buffered.subarray(0, 4).equals(MAGIC)) return undefined;
  const headerLength = buffered.readUInt32BE(4);
  const chunkBytes = buffered.readUInt32BE(8);
  const length = buffered.readUInt32BE(12);
  const tagLength = buffered.readUInt8(16);
  if (headerLength !== FIXED + tagLength || chunkBytes === 0 || !(await fill(headerLength))) return undefined;
  if (length !== expected.length || buffered.toString('utf8', FIXED, headerLength) !== expected.etag) return undefined;
  return verified(source, buffered.subarray(headerLength), { chunkBytes, length });
}

async function* verified(source: AsyncIterator<Buffer>, first: Buffer, layout: { chunkBytes: number; length: number }): AsyncGenerator<Buffer> {
  const { chunkBytes, length } = layout;
  let chunk = 0;
  let hash = createHash('sha256');
  let held: Buffer[] = [];
  let heldBytes = 0;
  // The digest after a chunk may arrive split across pieces.
  const digest = Buffer.allocUnsafe(DIGEST);
  let digestBytes = 0;
  let total = 0;
  try {
    for (let piece: Buffer | undefined = first; ; ) {
      while (piece && piece.length) {
        if (total === length) throw new TubeError('SLICE_CORRUPT', `more than ${length} bytes`);
        const want = Math.min(chunkBytes, length - chunk * chunkBytes) - heldBytes;
        if (want > 0) {
          const part = piece.subarray(0, want);
          piece = piece.subarray(part.length);
          hash.update(part);
          held.push(part);
          heldBytes += part.length;
          continue;
        }
        const part = piece.subarray(0, DIGEST - digestBytes);
        piece = piece.subarray(part.length);
        part.copy(digest, digestBytes);
        digestBytes += part.length;
        if (digestBytes < DIGEST) continue;
        if (!hash.digest().equals(digest)) throw new TubeError('SLICE_CORRUPT', `chunk ${chunk} does not match its digest`);
        yield* held;
        total += heldBytes;
        chunk++;
        hash = createHash('sha256');
        held = [];
        heldBytes = 0;
        digestBytes = 0;
      }
      const next = await source.next();
      if (next.done) break;
      piece = next.value;
    }
    if (total !== length) throw new TubeError('SLICE_CORRUPT', `${total + heldBytes} of ${length} bytes`);
  } finally {
    await source.return?.();
  }
}
