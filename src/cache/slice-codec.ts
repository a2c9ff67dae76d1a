import { createHash } from 'node:crypto';
import { TubeError } from '../errors.js';

/**
 * A stored slice is a small header, then the slice's bytes. The header names
 * the version (the manifest's ETag) and holds a SHA-256 of every 64 KiB chunk,
 * so a reader checks each chunk as it arrives and serves it at once: corruption
 * is caught before a byte of the chunk leaves, without waiting for the whole
 * slice. Inside the object rather than in S3 metadata (2 KB at most: 16
 * digests) or a sidecar (a second request before the first byte).
 *
 *   "TCS1" | header length u32 | chunk bytes u32 | slice length u32 |
 *   etag length u8 | etag (UTF-8) | sha256 × ceil(length / chunk)
 */
const MAGIC = Buffer.from('TCS1');
const FIXED = 17;
const DIGEST = 32;
export const INTEGRITY_CHUNK = 64 * 1024;

export interface SliceIdentity {
  /** The manifest's ETag: bytes of another version are a miss, not corruption. */
  readonly etag: string;
  readonly length: number;
}

/** The header to store before `bytes`. */
export function sliceHeader(bytes: Buffer, etag: string, chunkBytes = INTEGRITY_CHUNK): Buffer {
  const tag = Buffer.from(etag);
  const chunks = Math.ceil(bytes.length / chunkBytes);
  const header = Buffer.allocUnsafe(FIXED + tag.length + chunks * DIGEST);
  MAGIC.copy(header, 0);
  header.writeUInt32BE(header.length, 4);
  header.writeUInt32BE(chunkBytes, 8);
  header.writeUInt32BE(bytes.length, 12);
  header.writeUInt8(tag.length, 16);
  tag.copy(header, FIXED);
  for (let i = 0; i < chunks; i++) {
    createHash('sha256').update(bytes.subarray(i * chunkBytes, (i + 1) * chunkBytes)).digest().copy(header, FIXED + tag.length + i * DIGEST);
  }
  return header;
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
  const chunks = chunkBytes > 0 ? Math.ceil(length / chunkBytes) : -1;
  if (headerLength !== FIXED + tagLength + chunks * DIGEST || !(await fill(headerLength))) return undefined;
  if (length !== expected.length || buffered.toString('utf8', FIXED, FIXED + tagLength) !== expected.etag) return undefined;
  const digests = Buffer.from(buffered.subarray(FIXED + tagLength, headerLength));
  const rest = buffered.subarray(headerLength);
  return verified(source, rest, { digests, chunkBytes, length });
}

async function* verified(source: AsyncIterator<Buffer>, first: Buffer, layout: { digests: Buffer; chunkBytes: number; length: number }): AsyncGenerator<Buffer> {
  const { digests, chunkBytes, length } = layout;
  let chunk = 0;
  let hash = createHash('sha256');
  let held: Buffer[] = [];
  let heldBytes = 0;
  let total = 0;
  try {
    for (let piece: Buffer | undefined = first; ; ) {
      while (piece && piece.length) {
        const want = Math.min(chunkBytes, length - chunk * chunkBytes) - heldBytes;
        if (want <= 0) throw new TubeError('SLICE_CORRUPT', `more than ${length} bytes`);
        const part = piece.subarray(0, want);
        piece = piece.subarray(part.length);
        hash.update(part);
        held.push(part);
        heldBytes += part.length;
        total += part.length;
        if (part.length < want) continue;
        if (!hash.digest().equals(digests.subarray(chunk * DIGEST, (chunk + 1) * DIGEST))) throw new TubeError('SLICE_CORRUPT', `chunk ${chunk} does not match its digest`);
        yield* held;
        chunk++;
        hash = createHash('sha256');
        held = [];
        heldBytes = 0;
      }
      const next = await source.next();
      if (next.done) break;
      piece = next.value;
    }
    if (total !== length) throw new TubeError('SLICE_CORRUPT', `${total} of ${length} bytes`);
  } finally {
    await source.return?.();
  }
}
