/**
 * The MP4 index against ffprobe: for each fixture, the ranges src/origin/mp4.ts
 * computes for the first N seconds hold every packet ffprobe lists with a decode
 * or presentation time ≤ N on every stream, and in whole slices they take at most
 * one slice more than those packets (plus the movie box and slice 0) do.
 */
import { existsSync, readFileSync } from 'node:fs';
import test from 'ava';
import { execa } from 'execa';
import { isTubeError } from '../../src/errors.js';
import { headRanges, locateMoov, movieDuration, slicesOf, type ByteRange } from '../../src/origin/mp4.js';

const FFPROBE = process.env.FFPROBE_PATH ?? '/usr/bin/ffprobe';
const skipReason = existsSync(FFPROBE) ? undefined : `skipped: ${FFPROBE} not installed (.ci/run installs Debian's ffmpeg)`;
if (skipReason) console.log(`mp4.test.ts ffprobe comparisons ${skipReason}`);

const FIXTURES = ['faststart.mp4', 'moov-at-end.mp4', 'audio.m4a', 'vbr.mp4', 'video.mp4'];
const read = (name: string) => readFileSync(new URL(`../fixtures/${name}`, import.meta.url));

/** The movie box of a whole file, found the way the cache does: from the first 64 KiB, then one more read. */
function moovOf(file: Buffer): { box: Buffer; offset: number; reads: number } {
  let location = locateMoov(file.subarray(0, 64 * 1024), 0, file.length);
  let reads = 0;
  if (location.kind === 'fetch') {
    reads++;
    location = locateMoov(file.subarray(location.start, location.end), location.start, file.length);
  }
  if (location.kind !== 'found') throw new Error('moov not found after one read');
  return { ...location, reads };
}

interface Packet {
  dts: number;
  pts: number;
  pos: number;
  size: number;
}

async function packets(name: string): Promise<Packet[]> {
  const path = new URL(`../fixtures/${name}`, import.meta.url).pathname;
  const { stdout } = await execa(FFPROBE, ['-v', 'error', '-show_entries', 'packet=dts_time,pts_time,pos,size', '-of', 'json', path]);
  return (JSON.parse(stdout) as { packets: Record<string, string>[] }).packets.map((p) => ({ dts: Number(p.dts_time), pts: Number(p.pts_time), pos: Number(p.pos), size: Number(p.size) }));
}

const contains = (ranges: readonly ByteRange[], start: number, end: number) => ranges.some((r) => r.start <= start && end <= r.end);

for (const name of FIXTURES) {
  test(`${name}: the index ranges hold what ffprobe says the first seconds need, within one slice`, async (t) => {
    if (skipReason) return t.pass(skipReason);
    const file = read(name);
    const moov = moovOf(file);
    t.is(moov.reads, name === 'moov-at-end.mp4' ? 1 : 0, 'moov-at-end takes one more read, faststart none');
    const all = await packets(name);
    t.true(all.length > 100);
    for (const seconds of [3, 7]) {
      const ranges = headRanges(moov.box, moov.offset, seconds, file.length);
      const needed = all.filter((p) => p.dts <= seconds || p.pts <= seconds);
      t.true(needed.length > 0 && needed.length < all.length, `${seconds} s is part of the file`);
      for (const p of needed) t.true(contains(ranges, p.pos, p.pos + p.size), `${seconds} s: packet at ${p.pos} (${p.size} bytes, dts ${p.dts})`);
      t.true(contains(ranges, moov.offset, moov.offset + moov.box.length), 'the movie box');
      const exact: ByteRange[] = [{ start: 0, end: 1 }, { start: moov.offset, end: moov.offset + moov.box.length }, ...needed.map((p) => ({ start: p.pos, end: p.pos + p.size }))];
      for (const sliceBytes of [4096, 16 * 1024, 256 * 1024, 1024 * 1024]) {
        const indexed = new Set([0, ...slicesOf(ranges, sliceBytes)]);
        const truth = new Set(slicesOf(exact, sliceBytes));
        for (const index of truth) t.true(indexed.has(index), `${seconds} s, ${sliceBytes}-byte slices: slice ${index}`);
        t.true(indexed.size <= truth.size + 1, `${seconds} s, ${sliceBytes}-byte slices: ${indexed.size} for ${truth.size} needed`);
      }
    }
  });
}

test('the movie header gives each fixture its length', (t) => {
  t.is(movieDuration(moovOf(read('faststart.mp4')).box), 12);
  t.is(movieDuration(moovOf(read('moov-at-end.mp4')).box), 12);
  t.is(Math.round(movieDuration(moovOf(read('audio.m4a')).box)), 20);
});

test('slices of byte ranges: every slice a range touches, once, ascending', (t) => {
  t.deepEqual(slicesOf([{ start: 5, end: 10 }, { start: 0, end: 1 }, { start: 1023, end: 1025 }, { start: 4096, end: 4097 }], 1024), [0, 1, 4]);
  t.deepEqual(slicesOf([{ start: 1024, end: 2048 }], 1024), [1], 'an end on a boundary is exclusive');
});

// Hand-made boxes for the cases real files do not have.
const box = (type: string, ...parts: Buffer[]) => {
  const body = Buffer.concat(parts);
  const header = Buffer.alloc(8);
  header.writeUInt32BE(8 + body.length, 0);
  header.write(type, 4, 'latin1');
  return Buffer.concat([header, body]);
};
const u32 = (...values: number[]) => Buffer.concat(values.map((v) => { const b = Buffer.alloc(4); b.writeUInt32BE(v >>> 0); return b; }));
const ftyp = box('ftyp', Buffer.from('isom'), u32(0));
const malformed = (t: import('ava').ExecutionContext, run: () => unknown, message: string) => {
  const error = t.throws(run, undefined, message);
  t.true(isTubeError(error, 'MP4_MALFORMED'), `${message}: ${String(error)}`);
};

/** A one-track movie box with the given sample tables. */
const movie = (tables: { stts?: Buffer; stsc?: Buffer; stsz?: Buffer; stco?: Buffer }) =>
  box('moov',
    box('mvhd', u32(0, 0, 0, 1000, 10_000), Buffer.alloc(80)),
    box('trak', box('mdia',
      box('mdhd', u32(0, 0, 0, 1000, 10_000, 0)),
      box('minf', box('stbl',
        tables.stts ?? box('stts', u32(0, 1, 10, 1000)),
        tables.stsc ?? box('stsc', u32(0, 1, 1, 10, 1)),
        tables.stsz ?? box('stsz', u32(0, 100, 10)),
        tables.stco ?? box('stco', u32(0, 1, 2000)))))));

test('a hand-made movie: ten 1-second samples of 100 bytes in one chunk at 2000', (t) => {
  const moov = movie({});
  const location = locateMoov(Buffer.concat([ftyp, moov]), 0, 4000);
  if (location.kind !== 'found') return t.fail(location.kind);
  t.is(movieDuration(location.box), 10);
  t.deepEqual(headRanges(location.box, location.offset, 2.5, 4000), [{ start: ftyp.length, end: ftyp.length + moov.length }, { start: 2000, end: 2300 }]);
  t.deepEqual(headRanges(location.box, location.offset, 100, 4000).at(-1), { start: 2000, end: 3000 });
});

test('moov past the first bytes: one read of the rest, or of the moov box itself', (t) => {
  const mdat = box('mdat', Buffer.alloc(5000));
  const moov = movie({});
  const file = Buffer.concat([ftyp, mdat, moov]);
  t.deepEqual(locateMoov(file.subarray(0, 100), 0, file.length), { kind: 'fetch', start: ftyp.length + mdat.length, end: file.length });
  const faststart = Buffer.concat([ftyp, moov, mdat]);
  t.deepEqual(locateMoov(faststart.subarray(0, 100), 0, faststart.length), { kind: 'fetch', start: ftyp.length, end: ftyp.length + moov.length });
  const large = Buffer.concat([ftyp, Buffer.from([0, 0, 0, 1]), Buffer.from('mdat'), Buffer.from([0, 0, 0, 0, 0, 0, 0x13, 0x88]), Buffer.alloc(5000 - 16), moov]);
  t.deepEqual(locateMoov(large.subarray(0, 100), 0, large.length), { kind: 'fetch', start: ftyp.length + 5000, end: large.length }, '64-bit mdat size');
});

test('what cannot be indexed is MP4_MALFORMED', (t) => {
  const size = 1 << 20;
  malformed(t, () => locateMoov(Buffer.from('not an mp4 at all, just text'), 0, size), 'not an MP4');
  malformed(t, () => locateMoov(Buffer.concat([ftyp, box('moof', Buffer.alloc(8))]), 0, size), 'fragmented (moof)');
  malformed(t, () => locateMoov(Buffer.concat([ftyp, box('moov', box('mvhd', u32(0, 0, 0, 1000, 1)), box('mvex'))]), 0, size), 'fragmented (mvex)');
  malformed(t, () => locateMoov(Buffer.concat([ftyp, box('mdat', Buffer.alloc(10))]), 0, ftyp.length + 18), 'no moov at all');
  malformed(t, () => locateMoov(Buffer.concat([ftyp, u32(0), Buffer.from('mdat')]), 0, size), 'an mdat to the end of the file leaves no room for moov');
  malformed(t, () => locateMoov(Buffer.concat([ftyp, u32(4), Buffer.from('free')]), 0, size), 'a box smaller than its header');
  malformed(t, () => locateMoov(Buffer.concat([ftyp, u32(1), Buffer.from('mdat'), Buffer.from('ffffffffffffffff', 'hex')]), 0, size), 'a 64-bit size past 2^53');
  malformed(t, () => locateMoov(Buffer.concat([ftyp, u32(1000), Buffer.from('mdat')]), 0, 2 ** 31), 'the 2 GB after a short mdat are too much to read for moov');
  const headOf = (moov: Buffer) => () => headRanges(moov, 0, 5, 4000);
  malformed(t, headOf(movie({ stts: box('stts', u32(0, 0xffffffff, 10, 1000)) })), 'stts entry count past its bytes');
  malformed(t, headOf(movie({ stsz: box('stsz', u32(0, 0, 0xfffffff0)) })), 'stsz entry count past its bytes');
  malformed(t, headOf(movie({ stco: box('stco', u32(0, 0x40000000, 2000)) })), 'stco entry count past its bytes');
  malformed(t, headOf(movie({ stco: box('stco', u32(0, 1, 3950)) })), 'samples past the end of the file');
  malformed(t, headOf(movie({ stsc: box('stsc', u32(0, 1, 7, 1, 1)) })), 'stsc that does not start at chunk 1');
  malformed(t, headOf(movie({ stsc: box('stsc', u32(0, 1, 1, 2, 1)) })), 'chunks that hold fewer samples than the time table');
  malformed(t, headOf(movie({ stsz: box('stsz', u32(0, 0xffffffff, 10)) })), 'a constant sample size past the file');
  malformed(t, headOf(box('moov', box('mvhd', u32(0, 0, 0, 1000, 1)))), 'no track');
  malformed(t, headOf(box('moov', box('trak', box('mdia')))), 'a track without its tables');
  malformed(t, headOf(Buffer.concat([box('moov', box('trak')), Buffer.alloc(4)])), 'a moov buffer that is not one box');
});

test('zero and self-sized boxes end the walk instead of looping', (t) => {
  // A box of size 0 runs to its parent's end; a box cannot be smaller than its header, so each step moves ≥ 8 bytes.
  const zeroChild = box('moov', u32(0), Buffer.from('trak'));
  malformed(t, () => headRanges(zeroChild, 0, 5, 4000), 'an empty trak to the end of moov');
  const selfSized = Buffer.concat([u32(8), Buffer.from('moov')]);
  malformed(t, () => headRanges(selfSized, 0, 5, 4000), 'an empty moov');
  const deltaZero = movie({ stts: box('stts', u32(0, 1, 0xffffffff, 0)) });
  t.deepEqual(headRanges(deltaZero, 0, 5, 4000).at(-1), { start: 2000, end: 3000 }, 'a huge run of zero-length samples is bounded by the sample sizes');
});
