/**
 * ffprobe and ffmpeg (Debian's, built on FFmpeg's HTTP protocol with ranged
 * seeks) read a video through tubecache: the probe sees the fixture's streams
 * and duration, and a decode from the middle matches a decode of the file.
 */
import { existsSync } from 'node:fs';
import test from 'ava';
import { execa } from 'execa';
import { FIXTURE_VIDEO_PATH } from '../helpers/origin.js';
import { fixture, startHarness, type Harness, type Node } from '../helpers/harness.js';

const FFMPEG = process.env.FFMPEG_PATH ?? '/usr/bin/ffmpeg';
const FFPROBE = process.env.FFPROBE_PATH ?? '/usr/bin/ffprobe';
const missing = [FFMPEG, FFPROBE].filter((path) => !existsSync(path));
const skipReason = missing.length ? `skipped: ${missing.join(' and ')} not installed (.ci/run installs Debian's ffmpeg)` : undefined;
if (skipReason) console.log(`ffmpeg.test.ts ${skipReason}`);

let h: Harness;
let node: Node;
test.before(async () => {
  if (skipReason) return;
  h = await startHarness();
  node = await h.node({ HEAD_SECONDS: '5' });
});
test.after.always(() => h?.close());

/** Three seconds from the middle, one MD5 per decoded frame (video and audio). */
const decodeMiddle = (input: string) => execa(FFMPEG, ['-nostdin', '-v', 'error', '-ss', '15', '-i', input, '-t', '3', '-f', 'framemd5', '-'], { reject: false });

test('ffprobe reads the streams and duration of a proxied video', async (t) => {
  if (skipReason) return t.log(skipReason);
  const id = h.video(fixture, { reportDuration: 30 });
  const probe = await execa(FFPROBE, ['-v', 'error', '-show_entries', 'format=duration,size:stream=codec_type,codec_name', '-of', 'json', `${node.url}/proxy/${id}`], { reject: false });
  t.is(probe.exitCode, 0, probe.stderr);
  t.is(probe.stderr, '');
  const info = JSON.parse(probe.stdout) as { format: { duration: string; size: string }; streams: { codec_type: string; codec_name: string }[] };
  t.is(Number(info.format.size), fixture.length);
  t.is(Number(info.format.duration), 30);
  t.deepEqual(info.streams.map((stream) => `${stream.codec_type}/${stream.codec_name}`).sort(), ['audio/aac', 'video/h264']);
});

test('ffmpeg -ss decodes 3 s from the middle without errors, frame for frame as the file', async (t) => {
  if (skipReason) return t.log(skipReason);
  const id = h.video(fixture, { reportDuration: 30 });
  const [proxied, local] = await Promise.all([decodeMiddle(`${node.url}/proxy/${id}`), decodeMiddle(FIXTURE_VIDEO_PATH)]);
  t.is(proxied.exitCode, 0, proxied.stderr);
  t.is(proxied.stderr, '', 'no decode errors');
  t.is(local.exitCode, 0, local.stderr);
  const frames = proxied.stdout.split('\n').filter((line) => /^\d/.test(line));
  t.true(frames.length > 3 * 25, `${frames.length} frames decoded`);
  // The decoded frames' MD5s equal those of the committed file: the bytes ffmpeg read were the fixture's.
  t.is(proxied.stdout, local.stdout);
});
