import { encodeSlice } from '../../src/cache/slice-codec.js';
import { bodyOf } from '../../src/cache/store-util.js';

/** The object a store holds for a slice of `bytes` in version `etag` (what StoreTier.putSlice writes). */
export async function storedSlice(bytes: Buffer, etag: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of encodeSlice(bodyOf(bytes), { etag, length: bytes.length })) parts.push(part);
  return Buffer.concat(parts);
}
