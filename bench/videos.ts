/**
 * The bytes every scenario serves. Synthetic and deterministic: the origin does
 * not parse them, every system under test gets the same ones, and the bench can
 * recompute a video's sha256 without asking the origin.
 */
import { createHash } from 'node:crypto';
import type { SystemName } from './systems/process.js';

export type VideoKind = 'short' | 'long';

/**
 * `short` is the 5–6 MB whole-video case (a 4-minute 360p file is about
 * this size); `long` is the 10-minute video of "seek and leave" (~530 kbit/s).
 * The durations go into the stand-in yt-dlp's answer, so tubecache knows how
 * many slices HEAD_SECONDS covers (1 of 6 and 2 of 39 with the defaults).
 */
export const VIDEO_KINDS: Record<VideoKind, { size: number; duration: number; seed: number }> = {
  short: { size: 5_800_000, duration: 240, seed: 0x5eed_0001 },
  long: { size: 40_000_000, duration: 600, seed: 0x5eed_0002 },
};

const cache = new Map<VideoKind, Buffer>();

/** xorshift128: fast enough to fill 40 MB in a few tens of milliseconds, and the same bytes every run. */
export function videoBytes(kind: VideoKind): Buffer {
  let bytes = cache.get(kind);
  if (bytes) return bytes;
  const { size, seed } = VIDEO_KINDS[kind];
  const words = new Uint32Array(Math.ceil(size / 4));
  let x = seed >>> 0, y = 362436069, z = 521288629, w = 88675123;
  for (let i = 0; i < words.length; i++) {
    const t = x ^ (x << 11);
    x = y;
    y = z;
    z = w;
    w = (w ^ (w >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    words[i] = w;
  }
  bytes = Buffer.from(words.buffer, 0, size);
  cache.set(kind, bytes);
  return bytes;
}

export const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** One video of the run: its id at the origin and behind every proxy, and what the stand-in yt-dlp reports. */
export interface VideoDecl {
  id: string;
  kind: VideoKind;
  /** Omit the duration from the resolution: tubecache then persists HEAD_BYTES (the whole short video). */
  noDuration?: boolean;
}

let counter = 0;
const SYSTEMS: readonly SystemName[] = ['tubecache', 'nginx', 'varnish'];

/** A fresh valid YouTube-style id (11 characters) that says which scenario it belongs to: `fout-000012`. */
export function newVideoId(tag: string): string {
  counter++;
  return `${tag.slice(0, 4).padEnd(4, 'x')}-${String(counter).padStart(6, '0')}`;
}

/** `count` fresh ids per system, so no system ever finds another's cached copy. */
export function idsPerSystem(tag: string, count: number): Record<SystemName, string[]> {
  return Object.fromEntries(SYSTEMS.map((name) => [name, Array.from({ length: count }, () => newVideoId(tag))])) as Record<SystemName, string[]>;
}
