/**
 * The MP4 reader takes bytes from the origin, so it must survive any of them:
 * thousands of truncations, bit flips and smashed 32-bit fields of the real
 * fixtures, from a seeded generator (a failure names its seed and case, and
 * `MP4_FUZZ_SEED=<seed>` replays it). Every case either indexes or throws
 * MP4_MALFORMED; whatever it returns stays within the file and within a bound
 * set by the bytes it was given; a hang fails on ava's timeout.
 */
import { readFileSync } from 'node:fs';
import test from 'ava';
import { isTubeError } from '../../src/errors.js';
import { headRanges, locateMoov, movieDuration, slicesOf } from '../../src/origin/mp4.js';

const SEED = Number(process.env.MP4_FUZZ_SEED ?? 0x5eed14);
const CASES_PER_FILE = 1500;
const FIRST_BYTES = 64 * 1024;
const SLICE = 16 * 1024;

/** mulberry32: small, fast and the same on every machine. */
function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
}

const CONTAINERS = new Set(['moov', 'trak', 'mdia', 'minf', 'stbl', 'edts', 'dinf']);

/**
 * Where each fixture's movie box is, so that most damage lands on it, and the
 * places in it where a box's size, version or entry count lies (a box's first
 * 20 bytes), so that smashed fields hit what the parser trusts least.
 */
function moovSpan(file: Buffer): { start: number; end: number; fields: number[] } {
  let location = locateMoov(file.subarray(0, FIRST_BYTES), 0, file.length);
  if (location.kind === 'fetch') location = locateMoov(file.subarray(location.start, location.end), location.start, file.length);
  if (location.kind !== 'found') throw new Error('fixture without moov');
  const fields: number[] = [];
  const walk = (from: number, to: number) => {
    for (let at = from; at + 8 <= to; ) {
      const size = file.readUInt32BE(at);
      for (const field of [0, 8, 12, 16]) if (at + field + 4 <= to) fields.push(at + field);
      if (CONTAINERS.has(file.toString('latin1', at + 4, at + 8))) walk(at + 8, at + size);
      at += size;
    }
  };
  walk(location.offset, location.offset + location.box.length);
  return { start: location.offset, end: location.offset + location.box.length, fields };
}

/** One damaged copy of `file`: truncated, bits flipped, or 32-bit fields set to 0, 1, 8 or 2^32-1. */
function damage(file: Buffer, span: { start: number; end: number; fields: number[] }, random: () => number): { bytes: Buffer; size: number; what: string } {
  const pick = (from: number, to: number) => from + Math.floor(random() * (to - from));
  const inMoov = () => (random() < 0.9 ? pick(span.start, span.end) : pick(0, file.length));
  const kind = random();
  if (kind < 0.25) {
    const length = random() < 0.7 ? pick(span.start, span.end) : pick(0, file.length);
    // The file claims its full size but only `length` bytes exist: a truncated download.
    return { bytes: file.subarray(0, length), size: random() < 0.5 ? file.length : length, what: `truncated to ${length}` };
  }
  const bytes = Buffer.from(file);
  const changes: string[] = [];
  const count = 1 + Math.floor(random() * 8);
  for (let i = 0; i < count; i++) {
    const at = inMoov();
    if (kind < 0.7) {
      const bit = pick(0, 8);
      bytes[at]! ^= 1 << bit;
      changes.push(`flip ${at}.${bit}`);
    } else {
      const field = random() < 0.7 ? span.fields[pick(0, span.fields.length)]! : Math.min(at - (at % 4), bytes.length - 4);
      const value = [0, 1, 8, 0x7fffffff, 0xffffffff, pick(0, 2 ** 32)][pick(0, 6)]!;
      bytes.writeUInt32BE(value, field);
      changes.push(`u32 ${field}=${value}`);
    }
  }
  return { bytes, size: bytes.length, what: changes.join(', ') };
}

/** Everything the cache does with a file's bytes, through one tail read; returns the slices, or undefined for MP4_MALFORMED. */
function index(bytes: Buffer, size: number, seconds: number): number[] | undefined {
  try {
    let location = locateMoov(bytes.subarray(0, FIRST_BYTES), 0, size);
    if (location.kind === 'fetch') {
      if (location.start < 0 || location.end > size || location.end <= location.start) throw new Error(`bad fetch ${location.start}-${location.end}`);
      location = locateMoov(bytes.subarray(location.start, location.end), location.start, size);
      if (location.kind !== 'found') return undefined;
    }
    movieDuration(location.box);
    const ranges = headRanges(location.box, location.offset, seconds, size);
    // Bounded by the input: the moov range plus at most one range per chunk offset (4 bytes each).
    if (ranges.length > 1 + location.box.length / 4) throw new Error(`${ranges.length} ranges from ${location.box.length} bytes`);
    for (const range of ranges) if (range.start < 0 || range.end > size || range.end <= range.start) throw new Error(`range ${range.start}-${range.end} outside ${size}`);
    const slices = slicesOf(ranges, SLICE);
    if (slices.length > Math.ceil(size / SLICE)) throw new Error(`${slices.length} slices of a ${size}-byte file`);
    return slices;
  } catch (error) {
    if (isTubeError(error, 'MP4_MALFORMED')) return undefined;
    throw error;
  }
}

for (const name of ['faststart.mp4', 'moov-at-end.mp4', 'audio.m4a', 'vbr.mp4']) {
  test(`${name}: ${CASES_PER_FILE} damaged copies index or fail with MP4_MALFORMED, within bounds`, (t) => {
    const file = readFileSync(new URL(`../fixtures/${name}`, import.meta.url));
    const span = moovSpan(file);
    t.truthy(index(file, file.length, 5), 'the undamaged file indexes');
    const seed = SEED ^ [...name].reduce((h, c) => Math.imul(h, 31) + c.charCodeAt(0), 0);
    const random = rng(seed);
    const outcomes = { indexed: 0, malformed: 0 };
    for (let n = 0; n < CASES_PER_FILE; n++) {
      const { bytes, size, what } = damage(file, span, random);
      // A short head, and one past the end that walks every table entry.
      const seconds = random() < 0.5 ? 5 : 1e9;
      let slices: number[] | undefined;
      try {
        slices = index(bytes, size, seconds);
      } catch (error) {
        return t.fail(`seed ${seed} case ${n} (${what}, ${seconds} s): ${String(error)}`);
      }
      outcomes[slices ? 'indexed' : 'malformed']++;
    }
    t.log(`${name}: ${outcomes.indexed} indexed, ${outcomes.malformed} MP4_MALFORMED`);
    // Both outcomes occur: the damage reaches the parser rather than only bytes it never reads.
    t.true(outcomes.indexed > 0 && outcomes.malformed > 0);
  });
}
