import { isTubeError, TubeError } from '../errors.js';

/**
 * A reader of the MP4 movie box (`moov`) for the bytes a player needs to start:
 * where `moov` is, and which byte ranges hold every sample whose decode time is
 * within the first N seconds on every track. Pure functions over bytes that come
 * from the origin, so untrusted: every size and entry count is checked against
 * the bytes present before it is used, nothing is allocated from a count read
 * out of the file, and every loop advances by at least one box or one table
 * entry. Anything that cannot be read is a `TubeError('MP4_MALFORMED')`.
 */

/** A byte range of the file, `end` exclusive. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/** Where the movie box is, given file bytes from a box boundary. */
export type MoovLocation =
  /** Entirely in the bytes given: `box` is the moov box, `offset` its place in the file. */
  | { readonly kind: 'found'; readonly offset: number; readonly box: Buffer }
  /** Not (wholly) in the bytes given: read file bytes [start, end) and look again from `start`. */
  | { readonly kind: 'fetch'; readonly start: number; readonly end: number };

/** Bytes a movie box may take; a larger one is treated as malformed rather than read. */
export const MAX_MOOV_BYTES = 64 * 1024 * 1024;

const malformed = (detail: string): TubeError => new TubeError('MP4_MALFORMED', detail);

interface Box {
  readonly type: string;
  /** Offsets into the buffer being read. */
  readonly start: number;
  readonly body: number;
  readonly end: number;
}

/**
 * The header of the box at `position` in `buffer`, whose boxes belong to a parent
 * ending at `parentEnd` (which may lie past the buffer when reading the top level
 * of a file from its first bytes). A zero size means "to the parent's end".
 */
function boxAt(buffer: Buffer, position: number, parentEnd: number): Box {
  if (position + 8 > buffer.length) throw malformed(`box header at ${position} is cut off`);
  let size = buffer.readUInt32BE(position);
  let header = 8;
  if (size === 1) {
    if (position + 16 > buffer.length) throw malformed(`64-bit box size at ${position} is cut off`);
    const large = buffer.readBigUInt64BE(position + 8);
    if (large > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed(`box size ${large} at ${position}`);
    size = Number(large);
    header = 16;
  } else if (size === 0) {
    size = parentEnd - position;
  }
  if (size < header) throw malformed(`box size ${size} at ${position} is smaller than its header`);
  if (position + size > parentEnd) throw malformed(`box at ${position} (${size} bytes) overruns its parent`);
  return { type: buffer.toString('latin1', position + 4, position + 8), start: position, body: position + header, end: position + size };
}

/** The children of a box whose bytes are all in `buffer`; every step advances by a whole box of at least 8 bytes. */
function* children(buffer: Buffer, parent: { body: number; end: number }): Generator<Box> {
  for (let position = parent.body; position < parent.end; ) {
    const box = boxAt(buffer, position, parent.end);
    yield box;
    position = box.end;
  }
}

function child(buffer: Buffer, parent: { body: number; end: number }, type: string): Box | undefined {
  for (const box of children(buffer, parent)) if (box.type === type) return box;
  return undefined;
}

function need(buffer: Buffer, parent: { body: number; end: number }, type: string): Box {
  const box = child(buffer, parent, type);
  if (!box) throw malformed(`no ${type} box`);
  return box;
}

/**
 * Finds the movie box in file bytes [offset, offset + bytes.length), which start
 * at a top-level box boundary (offset 0: the file's first bytes). A fragmented
 * file (`moof`, or `mvex` in the movie box) has no sample tables to index.
 */
export function locateMoov(bytes: Buffer, offset: number, size: number): MoovLocation {
  if (offset === 0 && (bytes.length < 8 || bytes.toString('latin1', 4, 8) !== 'ftyp')) throw malformed('not an MP4 (no ftyp box first)');
  const fileEnd = size - offset;
  for (let position = 0; position < fileEnd; ) {
    // A header (8 bytes, 16 with a 64-bit size) not wholly read: the box starts here.
    const header = position + 8 <= bytes.length && bytes.readUInt32BE(position) !== 1 ? 8 : 16;
    if (position + Math.min(header, fileEnd - position) > bytes.length) return fetchOrFail(offset + position, size, 'the next box');
    const box = boxAt(bytes, position, fileEnd);
    if (box.type === 'moof') throw malformed('fragmented MP4 (moof)');
    if (box.type === 'moov') {
      if (box.end - box.start > MAX_MOOV_BYTES) throw malformed(`moov of ${box.end - box.start} bytes`);
      if (box.end > bytes.length) return { kind: 'fetch', start: offset + box.start, end: offset + box.end };
      const moov = bytes.subarray(box.start, box.end);
      if (child(moov, { body: box.body - box.start, end: moov.length }, 'mvex')) throw malformed('fragmented MP4 (mvex)');
      return { kind: 'found', offset: offset + box.start, box: moov };
    }
    if (box.end > bytes.length) return fetchOrFail(offset + box.end, size, 'moov after the bytes read');
    position = box.end;
  }
  throw malformed('no moov box');
}

/** The rest of the file from `start`, where the movie box must be, when that is a plausible read. */
function fetchOrFail(start: number, size: number, what: string): MoovLocation {
  if (start >= size) throw malformed('no moov box');
  if (size - start > MAX_MOOV_BYTES) throw malformed(`${what} lies ${size - start} bytes before the end`);
  return { kind: 'fetch', start, end: size };
}

/** The movie's duration in seconds from `mvhd`. */
export function movieDuration(moov: Buffer): number {
  const mvhd = need(moov, moovBody(moov), 'mvhd');
  const v1 = fullBoxVersion(moov, mvhd) === 1;
  const body = mvhd.body + 4;
  checkLength(mvhd, body, v1 ? 28 : 16);
  const timescale = moov.readUInt32BE(body + (v1 ? 16 : 8));
  const duration = v1 ? Number(moov.readBigUInt64BE(body + 20)) : moov.readUInt32BE(body + 12);
  if (timescale === 0) throw malformed('mvhd timescale 0');
  return duration / timescale;
}

/**
 * The byte ranges a player needs to play the first `seconds`: the movie box and
 * every sample whose decode time is ≤ `seconds` on every track (the track's
 * first edit shifts its media time, so frames reordered behind a B-frame delay
 * are counted too). Sorted and merged; every range lies within the file.
 */
export function headRanges(moov: Buffer, moovOffset: number, seconds: number, size: number): ByteRange[] {
  const ranges: ByteRange[] = [{ start: moovOffset, end: moovOffset + moov.length }];
  let tracks = 0;
  for (const trak of children(moov, moovBody(moov))) {
    if (trak.type !== 'trak') continue;
    tracks++;
    trackRanges(moov, trak, seconds, size, ranges);
  }
  if (tracks === 0) throw malformed('no trak box');
  return merge(ranges);
}

/** The indexes of the `sliceBytes`-sized slices that hold `ranges`, ascending. */
export function slicesOf(ranges: readonly ByteRange[], sliceBytes: number): number[] {
  const slices = new Set<number>();
  for (const { start, end } of ranges) {
    for (let index = Math.floor(start / sliceBytes); index * sliceBytes < end; index++) slices.add(index);
  }
  return [...slices].sort((a, b) => a - b);
}

function moovBody(moov: Buffer): Box {
  const box = boxAt(moov, 0, moov.length);
  if (box.type !== 'moov' || box.end !== moov.length) throw malformed('not a moov box');
  return box;
}

function fullBoxVersion(buffer: Buffer, box: Box): number {
  checkLength(box, box.body, 4);
  return buffer[box.body]!;
}

/** Throws unless `length` bytes from `from` lie inside the box. */
function checkLength(box: Box, from: number, length: number): void {
  if (from + length > box.end) throw malformed(`${box.type} box too short`);
}

/** A full box's entry count, checked against the bytes its entries take. */
function entryCount(buffer: Buffer, box: Box, headerBytes: number, entryBytes: number): { count: number; first: number } {
  const at = box.body + 4 + headerBytes;
  checkLength(box, at, 4);
  const count = buffer.readUInt32BE(at);
  if (count * entryBytes > box.end - at - 4) throw malformed(`${box.type} claims ${count} entries in ${box.end - at - 4} bytes`);
  return { count, first: at + 4 };
}

function trackRanges(moov: Buffer, trak: Box, seconds: number, size: number, out: ByteRange[]): void {
  const mdia = need(moov, trak, 'mdia');
  const stbl = need(moov, need(moov, mdia, 'minf'), 'stbl');
  const timescale = mediaTimescale(moov, need(moov, mdia, 'mdhd'));
  const limit = seconds * timescale + firstEditMediaTime(moov, trak);
  const sizes = sampleSizes(moov, stbl);
  const samples = Math.min(samplesUpTo(moov, need(moov, stbl, 'stts'), limit), sizes.count);
  if (samples === 0) return;
  const offsets = chunkOffsets(moov, stbl);
  const stsc = need(moov, stbl, 'stsc');
  const runs = entryCount(moov, stsc, 0, 12);
  let sample = 0;
  let chunk = 0; // zero-based index into the chunk offsets
  for (let run = 0; run < runs.count && sample < samples; run++) {
    const at = runs.first + run * 12;
    const firstChunk = moov.readUInt32BE(at) - 1;
    const perChunk = moov.readUInt32BE(at + 4);
    const nextFirst = run + 1 < runs.count ? moov.readUInt32BE(at + 12) - 1 : offsets.count;
    if (firstChunk !== chunk || nextFirst <= firstChunk || nextFirst > offsets.count) throw malformed(`stsc run ${run} does not follow the chunks`);
    for (; chunk < nextFirst && sample < samples; chunk++) {
      const take = Math.min(perChunk, samples - sample);
      const start = offsets.at(chunk);
      const end = start + sizes.sum(sample, take);
      if (end > size) throw malformed(`chunk ${chunk} ends at ${end}, past the file's ${size} bytes`);
      if (end > start) out.push({ start, end });
      sample += take;
    }
  }
  if (sample < samples) throw malformed(`the chunks hold ${sample} of ${samples} samples`);
}

function mediaTimescale(moov: Buffer, mdhd: Box): number {
  const v1 = fullBoxVersion(moov, mdhd) === 1;
  const at = mdhd.body + 4 + (v1 ? 16 : 8);
  checkLength(mdhd, at, 4);
  const timescale = moov.readUInt32BE(at);
  if (timescale === 0) throw malformed('mdhd timescale 0');
  return timescale;
}

/** Media time where presentation starts (the first edit that is not empty), in the media timescale; 0 without an edit list. */
function firstEditMediaTime(moov: Buffer, trak: Box): number {
  const edts = child(moov, trak, 'edts');
  const elst = edts && child(moov, edts, 'elst');
  if (!elst) return 0;
  const v1 = fullBoxVersion(moov, elst) === 1;
  const entry = v1 ? 20 : 12;
  const edits = entryCount(moov, elst, 0, entry);
  for (let index = 0; index < edits.count; index++) {
    const at = edits.first + index * entry;
    const mediaTime = v1 ? Number(moov.readBigInt64BE(at + 8)) : moov.readInt32BE(at + 4);
    if (mediaTime >= 0) return mediaTime;
  }
  return 0;
}

/** How many samples decode at or before media time `limit`. */
function samplesUpTo(moov: Buffer, stts: Box, limit: number): number {
  const runs = entryCount(moov, stts, 0, 8);
  let time = 0;
  let samples = 0;
  for (let run = 0; run < runs.count && time <= limit; run++) {
    const count = moov.readUInt32BE(runs.first + run * 8);
    const delta = moov.readUInt32BE(runs.first + run * 8 + 4);
    const within = delta === 0 ? count : Math.min(count, Math.floor((limit - time) / delta) + 1);
    samples += within;
    time += count * delta;
  }
  return samples;
}

interface SampleSizes {
  readonly count: number;
  /** Total bytes of `count` samples from sample `first`. */
  sum(first: number, count: number): number;
}

function sampleSizes(moov: Buffer, stbl: Box): SampleSizes {
  const stsz = child(moov, stbl, 'stsz');
  if (stsz) {
    checkLength(stsz, stsz.body + 4, 4);
    const fixed = moov.readUInt32BE(stsz.body + 4);
    if (fixed !== 0) {
      checkLength(stsz, stsz.body + 8, 4);
      return { count: moov.readUInt32BE(stsz.body + 8), sum: (_, count) => fixed * count };
    }
    const table = entryCount(moov, stsz, 4, 4);
    return { count: table.count, sum: (first, count) => sumTable(first, count, (i) => moov.readUInt32BE(table.first + i * 4)) };
  }
  const stz2 = child(moov, stbl, 'stz2');
  if (!stz2) throw malformed('no stsz or stz2 box');
  checkLength(stz2, stz2.body + 4, 4);
  const bits = moov[stz2.body + 7]!;
  if (bits !== 4 && bits !== 8 && bits !== 16) throw malformed(`stz2 field size ${bits}`);
  const table = entryCount(moov, stz2, 4, bits / 8);
  const read = bits === 16
    ? (i: number) => moov.readUInt16BE(table.first + i * 2)
    : bits === 8
      ? (i: number) => moov[table.first + i]!
      : (i: number) => (moov[table.first + (i >> 1)]! >> (i & 1 ? 0 : 4)) & 0x0f;
  return { count: table.count, sum: (first, count) => sumTable(first, count, read) };
}

function sumTable(first: number, count: number, read: (index: number) => number): number {
  let total = 0;
  for (let index = first; index < first + count; index++) total += read(index);
  return total;
}

function chunkOffsets(moov: Buffer, stbl: Box): { count: number; at(chunk: number): number } {
  const stco = child(moov, stbl, 'stco');
  if (stco) {
    const table = entryCount(moov, stco, 0, 4);
    return { count: table.count, at: (chunk) => moov.readUInt32BE(table.first + chunk * 4) };
  }
  const co64 = child(moov, stbl, 'co64');
  if (!co64) throw malformed('no stco or co64 box');
  const table = entryCount(moov, co64, 0, 8);
  return {
    count: table.count,
    at: (chunk) => {
      const offset = moov.readBigUInt64BE(table.first + chunk * 8);
      if (offset > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed(`chunk offset ${offset}`);
      return Number(offset);
    },
  };
}

/**
 * The duration in seconds from the movie header when the movie box lies within
 * `head` (faststart files, which YouTube serves); used when yt-dlp reports none.
 */
export function mp4Duration(head: Buffer): number | undefined {
  try {
    const location = locateMoov(head, 0, Number.MAX_SAFE_INTEGER);
    const duration = location.kind === 'found' ? movieDuration(location.box) : 0;
    return duration > 0 ? duration : undefined;
  } catch (error) {
    if (isTubeError(error, 'MP4_MALFORMED')) return undefined;
    throw error;
  }
}

function merge(ranges: ByteRange[]): ByteRange[] {
  ranges.sort((a, b) => a.start - b.start);
  const merged: ByteRange[] = [];
  for (const range of ranges) {
    const last = merged.at(-1);
    if (last && range.start <= last.end) merged[merged.length - 1] = { start: last.start, end: Math.max(last.end, range.end) };
    else merged.push(range);
  }
  return merged;
}
