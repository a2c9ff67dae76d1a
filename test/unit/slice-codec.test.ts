import { randomBytes } from 'node:crypto';
import test from 'ava';
import { encodeSlice, INTEGRITY_CHUNK, openSlice, storedSliceLength } from '../../src/cache/slice-codec.js';
import { bodyOf } from '../../src/cache/store-util.js';
import { isTubeError } from '../../src/errors.js';
import { storedSlice } from '../helpers/slices.js';

const ETAG = '"v1"';
const bytes = randomBytes(3 * INTEGRITY_CHUNK + 5000);
const stored = await storedSlice(bytes, ETAG);
const DIGEST = 32;

/** The stored object in pieces of `size` bytes, as a network would deliver it. */
async function* pieces(object: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < object.length; at += size) yield object.subarray(at, at + size);
}

test('a stored slice reads back exactly, whatever the piece size', async (t) => {
  for (const size of [13, 1000, INTEGRITY_CHUNK + 1, stored.length]) {
    const slice = await openSlice(pieces(stored, size), { etag: ETAG, length: bytes.length });
    const chunks: Buffer[] = [];
    for await (const chunk of slice!) chunks.push(chunk);
    t.true(Buffer.concat(chunks).equals(bytes), `pieces of ${size}`);
  }
});

test('another version or length, or not a slice object, is a miss', async (t) => {
  t.is(await openSlice(bodyOf(stored), { etag: '"v2"', length: bytes.length }), undefined);
  t.is(await openSlice(bodyOf(stored), { etag: ETAG, length: bytes.length - 1 }), undefined);
  t.is(await openSlice(bodyOf(bytes), { etag: ETAG, length: bytes.length }), undefined);
  t.is(await openSlice(bodyOf(Buffer.from('TCS2')), { etag: ETAG, length: bytes.length }), undefined);
});

test('a flipped byte stops the read before any byte of its chunk is yielded', async (t) => {
  const damaged = Buffer.from(stored);
  const header = stored.length - bytes.length - 4 * DIGEST;
  damaged[header + 2 * (INTEGRITY_CHUNK + DIGEST) + 17]! ^= 0x40;
  const slice = (await openSlice(pieces(damaged, 4096), { etag: ETAG, length: bytes.length }))!;
  let served = 0;
  const error = await t.throwsAsync(async () => {
    for await (const chunk of slice) served += chunk.length;
  });
  t.true(isTubeError(error, 'SLICE_CORRUPT'), String(error));
  t.is(served, 2 * INTEGRITY_CHUNK, 'exactly the chunks before the bad one');
});

test('a truncated or overlong object is corrupt', async (t) => {
  for (const object of [stored.subarray(0, stored.length - 1), Buffer.concat([stored, Buffer.from('x')])]) {
    const slice = (await openSlice(bodyOf(object), { etag: ETAG, length: bytes.length }))!;
    const error = await t.throwsAsync(async () => {
      for await (const _ of slice);
    });
    t.true(isTubeError(error, 'SLICE_CORRUPT'), String(error));
  }
});

test('a damaged digest is corruption too, caught before its chunk is yielded', async (t) => {
  const damaged = Buffer.from(stored);
  const header = stored.length - bytes.length - 4 * DIGEST;
  damaged[header + INTEGRITY_CHUNK + 3]! ^= 0x01;
  const slice = (await openSlice(pieces(damaged, 7000), { etag: ETAG, length: bytes.length }))!;
  let served = 0;
  const error = await t.throwsAsync(async () => {
    for await (const chunk of slice) served += chunk.length;
  });
  t.true(isTubeError(error, 'SLICE_CORRUPT'), String(error));
  t.is(served, 0);
});

test('the encoder streams: each digest follows its chunk, the size is known before the bytes', async (t) => {
  t.is(stored.length, storedSliceLength({ etag: ETAG, length: bytes.length }));
  // The slice arriving in uneven pieces, as from the origin: every byte that arrived (and the digest of
  // each chunk it completed) is written before the next piece is asked for.
  const headerLength = stored.length - bytes.length - 4 * DIGEST;
  const parts: Buffer[] = [];
  let written = 0;
  async function* arriving(): AsyncGenerator<Buffer> {
    for (let at = 0; at < bytes.length; at += 10_000) {
      t.is(written, headerLength + at + Math.floor(at / INTEGRITY_CHUNK) * DIGEST, `written before the piece at ${at}`);
      yield bytes.subarray(at, at + 10_000);
    }
  }
  for await (const part of encodeSlice(arriving(), { etag: ETAG, length: bytes.length })) {
    parts.push(Buffer.from(part));
    written += part.length;
  }
  t.true(Buffer.concat(parts).equals(stored));
  await t.throwsAsync(async () => {
    for await (const _ of encodeSlice(bodyOf(bytes.subarray(1)), { etag: ETAG, length: bytes.length }));
  }, { message: /ended at/ });
  await t.throwsAsync(async () => {
    for await (const _ of encodeSlice(bodyOf(bytes, Buffer.from('x')), { etag: ETAG, length: bytes.length }));
  }, { message: /got/ });
});
