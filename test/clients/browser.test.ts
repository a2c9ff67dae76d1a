/**
 * A real browser plays a video through tubecache: headless Chromium (Debian's
 * `chromium`, driven by playwright-core) on a page whose <video> points at
 * /proxy/:id — straight at a node, and through the nginx edge. It plays, seeks
 * past the persisted head into slices only the origin has, and plays again.
 */
import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import type { Response } from 'playwright-core';
import { parseRange } from '../../src/http/range.js';
import { mp4Duration } from '../../src/origin/mp4.js';
import { ARTIFACTS, chromiumMissing, launchChromium, type Browser } from '../helpers/browser.js';
import { eventually, fetchRaw, fixture, sha256, startHarness, type Harness, type Node } from '../helpers/harness.js';
import { nginxMissing, startEdge, type Edge } from '../helpers/nginx.js';

const SIZE = fixture.length;
const SLICE = 256 * 1024;
const HEAD_SECONDS = 5;
/** Past the 5 s head (2 slices of 256 KiB) and past the slices the first seconds of playback pulled in. */
const SEEK_TO = 20;
const PLAY_SECONDS = 2;
/** The fixture's duration as its MP4 header (mvhd) states it. */
const DURATION = mp4Duration(fixture)!;
/**
 * The origin's pace, a few times the fixture's bitrate (~70 KB/s): locally the
 * whole 2 MB would arrive before the seek and the browser would seek in its own
 * buffer; a real network leaves the later bytes unread, so the seek is a new range request.
 */
const ORIGIN_BYTES_PER_SECOND = 150 * 1024;

if (chromiumMissing) console.log(`browser.test.ts ${chromiumMissing}`);

/** What one `pino` request line of the node says (src/http/app.ts requestLog). */
interface RequestLine {
  reqId: string;
  method: string;
  url: string;
  status: number;
  cache?: string;
}

let h: Harness;
let node: Node;
let browser: Browser;
let pages: Server;
let pagesUrl: string;
const requestLog: RequestLine[] = [];

/**
 * The player page. Its script is plain browser JavaScript (the tests' tsconfig
 * has no DOM types); the test drives it through `window.player`.
 */
const PLAYER_PAGE = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>tubecache player</title></head>
<body style="margin:0;background:#000">
<video muted playsinline preload="auto" width="512" height="288"></video>
<script>
const video = document.querySelector('video');
const errors = [];
video.addEventListener('error', () => errors.push(video.error ? video.error.code + ': ' + video.error.message : 'error'));
const next = (name) => new Promise((resolve) => {
  const done = () => { video.removeEventListener(name, done); video.removeEventListener('error', done); resolve(); };
  video.addEventListener(name, done);
  video.addEventListener('error', done);
});
window.player = {
  errors,
  metadata: next('loadedmetadata').then(() => ({ duration: video.duration, width: video.videoWidth, height: video.videoHeight })),
  async playFor(seconds) {
    const from = video.currentTime;
    await video.play();
    while (video.currentTime < from + seconds && errors.length === 0) await next('timeupdate');
    video.pause();
    return { from, to: video.currentTime };
  },
  async seek(to) {
    const seeked = next('seeked');
    video.currentTime = to;
    await seeked;
    return video.currentTime;
  },
};
video.src = new URLSearchParams(location.search).get('src');
</script></body></html>
`;

test.before(async () => {
  if (chromiumMissing) return;
  h = await startHarness();
  // The node's request log, read back by the test (one JSON line per request).
  const logger = pino({ level: 'info' }, { write: (line: string) => void requestLog.push(JSON.parse(line) as RequestLine) });
  node = await h.node({ HEAD_SECONDS: String(HEAD_SECONDS) }, undefined, logger);
  // A page on another origin than the proxy: a cross-origin <video src> needs no CORS.
  pages = createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(PLAYER_PAGE));
  await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve));
  pagesUrl = `http://127.0.0.1:${(pages.address() as AddressInfo).port}/`;
  browser = await launchChromium({ viewport: { width: 512, height: 288 }, args: ['--autoplay-policy=no-user-gesture-required'] });
  await mkdir(ARTIFACTS, { recursive: true });
});

test.after.always(async () => {
  await browser?.close();
  await new Promise((resolve) => (pages ? pages.close(resolve) : resolve(undefined)));
  await h?.close();
});

interface SeenResponse {
  status: number;
  range: string | undefined;
  contentRange: string | undefined;
  reqId: string | undefined;
}

/** Plays, seeks to SEEK_TO, plays again; returns what the player reported and every /proxy response the browser got. */
async function watch(t: ExecutionContext, baseUrl: string, id: string, screenshot: string) {
  const page = await browser.context.newPage();
  const seen: Promise<SeenResponse>[] = [];
  page.on('response', (response: Response) => {
    if (!new URL(response.url()).pathname.startsWith('/proxy/')) return;
    seen.push(
      (async () => ({
        status: response.status(),
        range: (await response.request().headerValue('range')) ?? undefined,
        contentRange: (await response.headerValue('content-range')) ?? undefined,
        reqId: (await response.headerValue('x-request-id')) ?? undefined,
      }))(),
    );
  });
  try {
    await page.goto(`${pagesUrl}?src=${encodeURIComponent(`${baseUrl}/proxy/${id}`)}`);
    const metadata = (await page.evaluate('player.metadata')) as { duration: number; width: number; height: number };
    const first = (await page.evaluate(`player.playFor(${PLAY_SECONDS})`)) as { from: number; to: number };
    const seekedTo = (await page.evaluate(`player.seek(${SEEK_TO})`)) as number;
    const second = (await page.evaluate(`player.playFor(${PLAY_SECONDS})`)) as { from: number; to: number };
    const errors = (await page.evaluate('player.errors')) as string[];
    const path = new URL(screenshot, ARTIFACTS);
    await page.screenshot({ path: path.pathname });
    t.log(`screenshot: ${path.pathname}`);
    return { metadata, first, seekedTo, second, errors, responses: await Promise.all(seen) };
  } finally {
    await page.close();
  }
}

/** The assertions both routes share: playback, seeking, duration, and exact 206s for every range the browser asked. */
async function assertPlayback(t: ExecutionContext, baseUrl: string, id: string, result: Awaited<ReturnType<typeof watch>>) {
  const { metadata, first, seekedTo, second, errors, responses } = result;
  t.deepEqual(errors, [], 'no error event');
  t.is(metadata.duration, DURATION, "duration is the fixture's (its mvhd)");
  t.deepEqual([metadata.width, metadata.height], [256, 144]);
  t.is(first.from, 0);
  t.true(first.to >= PLAY_SECONDS, `played from 0 to ${first.to}`);
  t.true(Math.abs(seekedTo - SEEK_TO) < 0.5, `seeked to ${seekedTo}`);
  t.true(second.from >= SEEK_TO - 0.5 && second.to >= second.from + PLAY_SECONDS, `played from ${second.from} to ${second.to} after the seek`);

  t.log(`ranges the browser asked: ${responses.map((response) => `${response.range} → ${response.status} ${response.contentRange}`).join('; ')}`);
  t.true(responses.length >= 2, `the browser made ${responses.length} range requests`);
  const ranges = new Map<string, { start: number; end: number }>();
  for (const response of responses) {
    const asked = parseRange(response.range, SIZE);
    if (asked.kind !== 'partial') return t.fail(`the browser asked ${response.range ?? 'no range'}; players ask one byte range`);
    t.is(response.status, 206, response.range);
    t.is(response.contentRange, `bytes ${asked.start}-${asked.end}/${SIZE}`, response.range);
    ranges.set(response.range!, asked);
  }
  const headBytes = Math.ceil((SIZE * HEAD_SECONDS) / DURATION / SLICE) * SLICE;
  t.true(
    [...ranges.values()].some(({ start }) => start >= headBytes && start >= 2 * SLICE),
    `the seek asked for bytes past the persisted head (${headBytes}): ${[...ranges.keys()].join(', ')}`,
  );
  // The browser read these ranges (and may have cancelled them part way): each one, asked again, is exact.
  for (const [range, { start, end }] of ranges) {
    const again = await fetchRaw(`${baseUrl}/proxy/${id}`, { headers: { Range: range } });
    t.is(again.sha256, sha256(fixture.subarray(start, end + 1)), `bytes of ${range}`);
  }
}

test.serial('Chromium plays, seeks past the head and plays again, straight from a node', async (t) => {
  if (chromiumMissing) return t.log(chromiumMissing);
  const id = h.video(fixture, { reportDuration: DURATION, bytesPerSecond: ORIGIN_BYTES_PER_SECOND });
  const result = await watch(t, node.url, id, 'browser-node.png');
  await assertPlayback(t, node.url, id, result);
  // The proxy's own log: every response the browser saw is there, answered 206.
  for (const response of result.responses) {
    const line = requestLog.find((entry) => entry.reqId === response.reqId);
    t.like(line, { method: 'GET', url: `/proxy/${id}`, status: 206 }, `log line of ${response.range}`);
  }
  t.true(
    requestLog.some((entry) => entry.url === `/proxy/${id}` && entry.cache === 'MISS'),
    'past the head, the node went to the origin',
  );
});

test.serial('Chromium plays and seeks through the nginx edge', async (t) => {
  if (chromiumMissing) return t.log(chromiumMissing);
  const missing = nginxMissing();
  if (missing) return t.log(`skipped: ${missing}`);
  let edge: Edge | undefined;
  try {
    edge = await startEdge([node]);
    const id = h.video(fixture, { reportDuration: DURATION, bytesPerSecond: ORIGIN_BYTES_PER_SECOND });
    const result = await watch(t, edge.url, id, 'browser-edge.png');
    // The edge's access log (read before assertPlayback asks the ranges again): each range the
    // browser asked was answered 206 with its exact Content-Range. nginx logs a request when it
    // ends, and the browser's cancelled ones end as the page's connections close.
    const logged = async () => (await edge!.accessLog()).filter((entry) => entry.uri === `/proxy/${id}`);
    await eventually(async () => (await logged()).length >= result.responses.length, 10_000, 'the edge to log every request');
    const log = await logged();
    for (const response of result.responses) {
      t.truthy(
        log.find((entry) => entry.range === response.range && entry.status === 206 && entry.contentRange === response.contentRange),
        `edge log line of ${response.range}`,
      );
    }
    await assertPlayback(t, edge.url, id, result);
    // Behind the edge, the node answered nginx's 1 MiB slice requests, all 206.
    const nodeLines = requestLog.filter((entry) => entry.url === `/proxy/${id}`);
    t.true(nodeLines.length > 0);
    t.true(nodeLines.every((entry) => entry.status === 206));
  } finally {
    await edge?.close();
  }
});
