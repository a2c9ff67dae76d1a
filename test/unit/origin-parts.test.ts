import test from 'ava';
import { hostMatches } from '../../src/origin/hosts.js';
import { mp4Duration } from '../../src/origin/mp4.js';
import { classify } from '../../src/origin/resolver.js';
import { isVideoId, parseVideoId } from '../../src/origin/video-id.js';
import { isTubeError } from '../../src/errors.js';

test('video ids are exactly 11 characters of [A-Za-z0-9_-]', (t) => {
  for (const id of ['dQw4w9WgXcQ', '-abcdefghij', '___________']) t.true(isVideoId(id), id);
  for (const id of ['short', 'dQw4w9WgXcQx', 'dQw4w9WgXc!', '--help=true', '../../etc/p', 'dQw4w9WgXc ', '']) t.false(isVideoId(id), id);
  t.true(isTubeError(t.throws(() => parseVideoId('--exec=rm -rf')), 'INVALID_VIDEO_ID'));
});

test('host patterns match subdomains with *. and exact names otherwise', (t) => {
  const patterns = ['*.googlevideo.com', '127.0.0.1'];
  t.true(hostMatches('rr3---sn-abc.googlevideo.com', patterns));
  t.true(hostMatches('127.0.0.1', patterns));
  t.false(hostMatches('googlevideo.com.evil.net', patterns));
  t.false(hostMatches('evilgooglevideo.com', patterns));
  t.false(hostMatches('127.0.0.2', patterns));
});

test('yt-dlp errors are classified by their reason', (t) => {
  const cases: [string, string, number][] = [
    ['ERROR: [youtube] abc: Video unavailable', 'VIDEO_UNAVAILABLE', 404],
    ['ERROR: [youtube] abc: Private video. Sign in if you\'ve been granted access', 'VIDEO_UNAVAILABLE', 404],
    ['ERROR: [youtube] abc: This video has been removed by the uploader', 'VIDEO_UNAVAILABLE', 404],
    ['ERROR: [youtube] abc: Sign in to confirm you’re not a bot. Use --cookies-from-browser', 'YTDLP_RESTRICTED', 503],
    ['ERROR: [youtube] abc: Sign in to confirm your age. This video may be inappropriate for some users.', 'YTDLP_RESTRICTED', 503],
    ['ERROR: unable to download video data: HTTP Error 429: Too Many Requests', 'YTDLP_RESTRICTED', 503],
    ['ERROR: [youtube] abc: Unable to extract initial player response', 'YTDLP_FAILED', 502],
    ['Traceback (most recent call last):\n  boom', 'YTDLP_FAILED', 502],
  ];
  for (const [stderr, code, status] of cases) {
    const error = classify(`WARNING: something first\n${stderr}\n`);
    t.is(error.code as string, code, stderr);
    t.is(error.status, status, stderr);
    t.true(error.publicMessage.includes(stderr.split('\n').at(-1)!.trim().slice(0, 40)), 'the reason reaches the client');
  }
  t.is(classify('ERROR: Sign in to confirm you’re not a bot').retryAfter, 60);
});

test('the MP4 header gives the duration (versions 0 and 1)', (t) => {
  const box = (type: string, body: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, 0]), Buffer.from(type, 'latin1'), body]).fill(0, 0, 0);
  const sized = (buffer: Buffer) => (buffer.writeUInt32BE(buffer.length, 0), buffer);
  const mvhd0 = Buffer.alloc(100);
  mvhd0.writeUInt32BE(1000, 12);
  mvhd0.writeUInt32BE(31_500, 16);
  const mvhd1 = Buffer.alloc(112);
  mvhd1[0] = 1;
  mvhd1.writeUInt32BE(600, 20);
  mvhd1.writeBigUInt64BE(6000n, 24);
  const ftyp = sized(box('ftyp', Buffer.from('isom0000')));
  for (const [mvhd, seconds] of [[mvhd0, 31.5], [mvhd1, 10]] as const) {
    const moov = sized(box('moov', sized(box('mvhd', mvhd))));
    t.is(mp4Duration(Buffer.concat([ftyp, moov, Buffer.alloc(50)])), seconds);
  }
  t.is(mp4Duration(Buffer.concat([ftyp, sized(box('mdat', Buffer.alloc(10)))])), undefined, 'no moov in the head');
  t.is(mp4Duration(Buffer.from('not an mp4 at all')), undefined);
});
