/**
 * Tests of the test helpers themselves (test/helpers/origin.ts and fake-yt-dlp): if the
 * stand-in YouTube is wrong, every tubecache test built on it proves nothing.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { FAKE_YTDLP_PATH, FIXTURE_VIDEO_PATH, TEST_USER_AGENT, startOrigin } from './helpers/origin.js';
import type { Origin, VideoOptions } from './helpers/origin.js';
import { isAlive } from './helpers/processes.js';

const VIDEO = readFileSync(FIXTURE_VIDEO_PATH);
const SIZE = VIDEO.length;
const ID = 'aBcDeFgHiJk';
const REAL_YTDLP = '/usr/bin/yt-dlp';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const slice = (start: number, end: number) => sha(VIDEO.subarray(start, end + 1));

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The body ended early: socket closed before Content-Length bytes (a reset). */
  aborted: boolean;
  /** No bytes arrived for idleMs, so the client gave up (a stalled body). */
  stalled: boolean;
}

/** A plain node:http client, so partial bodies, resets and stalls are all observable. */
function get(url: string, headers: Record<string, string> = {}, options: { method?: string; idleMs?: number; onData?: (received: number) => void } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    let responded = false;
    const req = request(url, { method: options.method ?? 'GET', headers, agent: false }, (res) => {
      responded = true;
      const chunks: Buffer[] = [];
      let stalled = false;
      let idle: NodeJS.Timeout | undefined;
      const arm = () => {
        clearTimeout(idle);
        if (options.idleMs) idle = setTimeout(() => ((stalled = true), res.destroy()), options.idleMs);
      };
      arm();
      const finish = () => {
        clearTimeout(idle);
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, aborted: !res.complete && !stalled, stalled });
      };
      let received = 0;
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        arm();
        received += c.length;
        options.onData?.(received);
      });
      res.on('end', finish);
      res.on('error', () => undefined); // 'aborted' errors: reported through `aborted`
      res.on('close', finish); // resolve() twice is harmless
    });
    // Once the response has begun, a reset is reported through `aborted` (Node 24 also emits it on the request).
    req.on('error', (error) => (responded ? undefined : reject(error)));
    req.end();
  });
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}
const run = (file: string, args: string[], timeout = 30_000) =>
  new Promise<Run>((resolve) =>
    execFile(file, args, { timeout }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    }),
  );

const ytdlpArgs = (origin: Origin, id: string, format = '18/b') => ['-J', '--no-playlist', '--no-warnings', '-f', format, '--', origin.pageUrl(id)];

async function withOrigin(t: ExecutionContext, options: Partial<VideoOptions> = {}, requireToken = true) {
  const origin = await startOrigin({ requireToken });
  t.teardown(() => origin.close());
  origin.addVideo(ID, VIDEO, options);
  return origin;
}

/** A signed URL and the headers a correct client sends with it (as the resolution says). */
function signed(origin: Origin, id = ID) {
  return { url: origin.issueUrl(id), headers: { 'User-Agent': TEST_USER_AGENT, 'X-Origin-Token': origin.token } };
}

test('fixture: 144p faststart MP4 of the expected size', (t) => {
  t.true(SIZE > 1_000_000 && SIZE < 3_000_000, `size ${SIZE}`);
  t.is(VIDEO.subarray(4, 8).toString('latin1'), 'ftyp');
  // faststart: the box right after ftyp is moov, not mdat.
  t.is(VIDEO.subarray(VIDEO.readUInt32BE(0) + 4, VIDEO.readUInt32BE(0) + 8).toString('latin1'), 'moov');
});

test('header ranges: 206 with exact Content-Range/Content-Length; no Range → 200 whole', async (t) => {
  const origin = await withOrigin(t);
  const { url, headers } = signed(origin);
  const cases: Array<[string, number, number]> = [
    ['bytes=0-0', 0, 0],
    ['bytes=100-199', 100, 199],
    ['bytes=1000000-', 1000000, SIZE - 1],
    ['bytes=-500', SIZE - 500, SIZE - 1],
    [`bytes=${SIZE - 1}-${SIZE + 5000}`, SIZE - 1, SIZE - 1], // end clamped
    [`bytes=-${SIZE * 2}`, 0, SIZE - 1],
  ];
  for (const [range, start, end] of cases) {
    const r = await get(url, { ...headers, Range: range });
    t.is(r.status, 206, range);
    t.is(r.headers['content-range'], `bytes ${start}-${end}/${SIZE}`, range);
    t.is(r.headers['content-length'], String(end - start + 1), range);
    t.is(sha(r.body), slice(start, end), range);
  }
  const whole = await get(url, headers);
  t.is(whole.status, 200);
  t.is(whole.headers['content-range'], undefined);
  t.is(whole.headers['content-length'], String(SIZE));
  t.is(whole.headers['content-type'], 'video/mp4');
  t.is(sha(whole.body), sha(VIDEO));
  // Header-style servers ignore googlevideo's &range=.
  const ignored = await get(`${url}&range=0-99`, headers);
  t.is(ignored.status, 200);
  t.is(sha(ignored.body), sha(VIDEO));
  // HEAD: same headers, no body.
  const head = await get(url, { ...headers, Range: 'bytes=10-19' }, { method: 'HEAD' });
  t.is(head.status, 206);
  t.is(head.headers['content-length'], '10');
  t.is(head.body.length, 0);
  t.is(origin.statsFor(ID).requests.at(-1)?.bytes, 0);
});

test('query ranges (googlevideo style): 200 with exactly those bytes and no Content-Range', async (t) => {
  const origin = await withOrigin(t, { rangeStyle: 'query' });
  const { url, headers } = signed(origin);
  for (const [start, end] of [[0, 0], [12345, 67890], [SIZE - 10, SIZE - 1]] as const) {
    const r = await get(`${url}&range=${start}-${end}`, headers);
    t.is(r.status, 200);
    t.is(r.headers['content-range'], undefined);
    t.is(r.headers['content-length'], String(end - start + 1));
    t.is(sha(r.body), slice(start, end));
  }
  // Header ranges still work on a query-style server.
  const h = await get(url, { ...headers, Range: 'bytes=5-9' });
  t.is(h.status, 206);
  t.is(sha(h.body), slice(5, 9));
  const rec = origin.statsFor(ID).requests;
  t.is(rec[1]?.queryRange, '12345-67890');
  t.is(rec[3]?.range, 'bytes=5-9');
});

test('unsatisfiable ranges → 416 with Content-Range: bytes */size', async (t) => {
  const origin = await withOrigin(t, { rangeStyle: 'query' });
  const { url, headers } = signed(origin);
  for (const range of [`bytes=${SIZE}-`, `bytes=${SIZE + 10}-${SIZE + 20}`, 'bytes=-0']) {
    const r = await get(url, { ...headers, Range: range });
    t.is(r.status, 416, range);
    t.is(r.headers['content-range'], `bytes */${SIZE}`);
  }
  const q = await get(`${url}&range=${SIZE}-${SIZE + 1}`, headers);
  t.is(q.status, 416);
  t.is(q.headers['content-range'], `bytes */${SIZE}`);
});

test('URL checks: expiry, foreign or tampered signatures, missing token, revocation → 403', async (t) => {
  const origin = await withOrigin(t, { expiresInSeconds: -1 });
  const headers = { 'X-Origin-Token': origin.token };
  const expired = origin.issueUrl(ID);
  t.regex(expired, new RegExp(`^${origin.url}/videoplayback\\?id=${ID}&expire=\\d+&clen=${SIZE}&lmt=\\d+&mime=video%2Fmp4&sig=[0-9a-f]+$`));
  t.is((await get(expired, headers)).status, 403);

  origin.setVideo(ID, { expiresInSeconds: 3600 });
  const url = origin.issueUrl(ID);
  t.is((await get(url, headers)).status, 200);
  t.is((await get(url.replace(/sig=[0-9a-f]+/, 'sig=deadbeef'), headers)).status, 403);
  t.is((await get(url.replace(/expire=(\d+)/, (_, e: string) => `expire=${Number(e) + 3600}`), headers)).status, 403);
  t.is((await get(url)).status, 403, 'no X-Origin-Token');
  t.is((await get(url, { 'X-Origin-Token': 'nope' })).status, 403);
  origin.revokeUrls(ID);
  t.is((await get(url, headers)).status, 403);
  t.is((await get(origin.issueUrl(ID), headers)).status, 200, 'new URLs still work');

  const open = await startOrigin({ requireToken: false });
  t.teardown(() => open.close());
  open.addVideo(ID, VIDEO);
  t.is((await get(open.issueUrl(ID))).status, 200, 'requireToken: false');
});

test('faults: forbid-once, forbid-always, status', async (t) => {
  const origin = await withOrigin(t);
  const { url, headers } = signed(origin);
  const range = (a: number) => ({ ...headers, Range: `bytes=${a}-${a + 99}` });

  origin.setFault(ID, { kind: 'forbid-once', afterBytes: 1000 });
  t.is((await get(url, range(0))).status, 206, 'starts before afterBytes: untouched');
  t.is((await get(url, range(1000))).status, 403);
  const after = await get(url, range(1000));
  t.is(after.status, 206);
  t.is(sha(after.body), slice(1000, 1099));

  origin.setFault(ID, { kind: 'forbid-always' });
  for (let i = 0; i < 3; i++) t.is((await get(url, range(0))).status, 403);
  origin.setFault(ID, undefined);
  t.is((await get(url, range(0))).status, 206);

  origin.setFault(ID, { kind: 'status', status: 503, times: 2 });
  t.is((await get(url, range(0))).status, 503);
  t.is((await get(url, range(0))).status, 503);
  t.is((await get(url, range(0))).status, 206);
  t.deepEqual(
    origin.statsFor(ID).requests.map((r) => r.status),
    [206, 403, 206, 403, 403, 403, 206, 503, 503, 206],
  );
});

test('faults: reset cuts the body at an absolute offset, then recovers', async (t) => {
  const origin = await withOrigin(t);
  const { url, headers } = signed(origin);
  origin.setFault(ID, { kind: 'reset', afterBytes: 300_000, times: 2 });
  const before = await get(url, { ...headers, Range: 'bytes=0-99999' });
  t.is(before.status, 206, 'does not cover the offset');
  t.false(before.aborted);

  const cut = await get(url, headers);
  t.is(cut.status, 200);
  t.true(cut.aborted);
  t.is(sha(cut.body), slice(0, 299_999));

  const resumed = await get(url, { ...headers, Range: 'bytes=200000-' });
  t.true(resumed.aborted);
  t.is(sha(resumed.body), slice(200_000, 299_999));

  const ok = await get(url, { ...headers, Range: 'bytes=200000-' });
  t.false(ok.aborted);
  t.is(sha(ok.body), slice(200_000, SIZE - 1));
  t.deepEqual(origin.statsFor(ID).requests.map((r) => r.bytes), [100_000, 300_000, 100_000, SIZE - 200_000]);
});

test('faults: hang-body stalls after an offset without closing; wrong-length is one byte short', async (t) => {
  const origin = await withOrigin(t);
  const { url, headers } = signed(origin);
  origin.setFault(ID, { kind: 'hang-body', afterBytes: 500_000 });
  const hung = await get(url, { ...headers, Range: 'bytes=100000-' }, { idleMs: 400 });
  t.is(hung.status, 206);
  t.true(hung.stalled);
  t.is(sha(hung.body), slice(100_000, 499_999));
  t.false((await get(url, { ...headers, Range: 'bytes=100000-' }, { idleMs: 2000 })).stalled, 'once by default');

  origin.setFault(ID, { kind: 'wrong-length' });
  const short = await get(url, { ...headers, Range: 'bytes=1000-1999' });
  t.is(short.status, 206);
  t.is(short.headers['content-length'], '999');
  t.is(short.headers['content-range'], `bytes 1000-1999/${SIZE}`);
  t.is(sha(short.body), slice(1000, 1998));
  t.is((await get(url, { ...headers, Range: 'bytes=1000-1999' })).body.length, 1000);
});

test('throttle and first-byte delay pace the response; close() ends stalled sockets', async (t) => {
  const origin = await withOrigin(t); // closed again by teardown: harmless
  const { url, headers } = signed(origin);
  origin.setThrottle(ID, 200_000);
  let started = Date.now();
  const slow = await get(url, { ...headers, Range: 'bytes=0-99999' });
  const took = Date.now() - started;
  t.true(took >= 400 && took < 2000, `100 kB at 200 kB/s took ${took} ms`);
  t.is(sha(slow.body), slice(0, 99_999));

  origin.setThrottle(ID, undefined);
  origin.setVideo(ID, { firstByteDelayMs: 300 });
  started = Date.now();
  await get(url, { ...headers, Range: 'bytes=0-9' });
  t.true(Date.now() - started >= 290);

  origin.setVideo(ID, { firstByteDelayMs: 0 });
  origin.setFault(ID, { kind: 'hang-body', afterBytes: 10 });
  let bodyBegun!: () => void;
  const begun = new Promise<void>((resolve) => (bodyBegun = resolve));
  const pending = get(url, headers, { onData: (received) => received >= 10 && bodyBegun() });
  await begun; // a fixed delay raced the response on a loaded CI machine
  await origin.close(); // must not wait for the stalled response
  const r = await pending;
  t.is(r.body.length, 10);
  t.true(r.aborted);
});

test('replaceBytes: old URLs serve the new bytes and size; lmt is bumped', async (t) => {
  const origin = await withOrigin(t);
  const { url, headers } = signed(origin);
  const changed = Buffer.concat([VIDEO.subarray(0, 1000), Buffer.from('re-encoded')]);
  origin.replaceBytes(ID, changed);
  const r = await get(url, headers);
  t.is(r.headers['content-length'], String(changed.length));
  t.is(sha(r.body), sha(changed));
  const fresh = new URL(origin.issueUrl(ID)).searchParams;
  t.is(fresh.get('clen'), String(changed.length));
  t.not(fresh.get('lmt'), new URL(url).searchParams.get('lmt'));
});

test('counters: stats, statsFor, request headers, resetStats', async (t) => {
  const origin = await withOrigin(t);
  const { url, headers } = signed(origin);
  await get(url, { ...headers, Range: 'bytes=0-1023' });
  await get(url, headers, { method: 'HEAD' });
  await run(FAKE_YTDLP_PATH, ytdlpArgs(origin, ID));
  t.deepEqual(origin.stats, { mediaConnections: 2, mediaRequests: 2, mediaBytes: 1024, resolves: 1 });
  const s = origin.statsFor(ID);
  t.is(s.mediaBytes, 1024);
  t.is(s.resolves, 1);
  t.is(s.requests[0]?.headers['user-agent'], TEST_USER_AGENT);
  t.is(s.requests[0]?.headers['x-origin-token'], origin.token);
  t.is(s.requests[1]?.method, 'HEAD');
  origin.resetStats();
  t.deepEqual(origin.stats, { mediaConnections: 0, mediaRequests: 0, mediaBytes: 0, resolves: 0 });
  t.deepEqual(origin.statsFor(ID).requests, []);
  t.deepEqual(origin.resolveCalls, []);
});

test('fake yt-dlp: resolves like yt-dlp -J and rejects unexpected argv', async (t) => {
  const origin = await withOrigin(t, { reportDuration: 30 });
  t.is((await run(FAKE_YTDLP_PATH, ['--version'])).stdout, '2023.03.04-fake\n');

  const ok = await run(FAKE_YTDLP_PATH, [...ytdlpArgs(origin, ID).slice(0, 5), '--socket-timeout', '10', ...ytdlpArgs(origin, ID).slice(5)]);
  t.is(ok.code, 0, ok.stderr);
  const info = JSON.parse(ok.stdout) as { id: string; url: string; filesize: number; duration: number; format_id: string; http_headers: Record<string, string> };
  t.like(info, { id: ID, format_id: '18', filesize: SIZE, duration: 30, http_headers: { 'User-Agent': TEST_USER_AGENT, 'X-Origin-Token': origin.token } });
  const body = await get(info.url, info.http_headers);
  t.is(sha(body.body), sha(VIDEO));
  t.deepEqual(origin.resolveCalls.at(-1), { id: ID, url: origin.pageUrl(ID), format: '18/b', argv: [...ytdlpArgs(origin, ID).slice(0, 5), '--socket-timeout', '10', '--', origin.pageUrl(ID)] });

  const page = origin.pageUrl(ID);
  const bad: string[][] = [
    ['-J', '--no-playlist', '--no-warnings', '-f', '18', page], // no --
    ['-J', '--no-playlist', '--no-warnings', '-f', '18', '--', page, page], // two URLs
    ['-J', '--no-playlist', '--no-warnings', '-f', '18', '--exec', 'touch /tmp/x', '--', page], // unknown option
    ['-J', '--no-playlist', '--no-warnings', '-f', '18', 'stray', '--', page], // positional before --
    ['-J', '--no-warnings', '-f', '18', '--', page], // missing --no-playlist
    ['-J', '--no-playlist', '--no-warnings', '--', page], // missing -f
  ];
  const calls = origin.resolveCalls.length;
  for (const argv of bad) {
    const r = await run(FAKE_YTDLP_PATH, argv);
    t.is(r.code, 2, JSON.stringify(argv));
    t.regex(r.stderr, /^Usage: yt-dlp \[OPTIONS\] URL/);
  }
  t.is(origin.resolveCalls.length, calls, 'rejected before contacting the origin');

  // After --, an option-looking string is just a (bad) URL, never an option.
  const dashed = await run(FAKE_YTDLP_PATH, ['-J', '--no-playlist', '--no-warnings', '-f', '18', '--', '--exec=rm']);
  t.is(dashed.code, 1);
  t.is(dashed.stdout, 'null\n');
});

test('fake yt-dlp: unknown id, fail, slow and url behaviours', async (t) => {
  const origin = await withOrigin(t);
  const unknown = await run(FAKE_YTDLP_PATH, ytdlpArgs(origin, 'zzzzzzzzzzz'));
  t.deepEqual(unknown, { code: 1, stdout: 'null\n', stderr: 'ERROR: [youtube] zzzzzzzzzzz: Video unavailable\n' });

  origin.setResolve(ID, { kind: 'fail', stderr: 'ERROR: [youtube] x: Sign in to confirm your age', exitCode: 1 });
  t.deepEqual(await run(FAKE_YTDLP_PATH, ytdlpArgs(origin, ID)), { code: 1, stdout: 'null\n', stderr: 'ERROR: [youtube] x: Sign in to confirm your age\n' });

  origin.setResolve(ID, { kind: 'slow', ms: 700 });
  const started = Date.now();
  const slow = await run(FAKE_YTDLP_PATH, ytdlpArgs(origin, ID));
  t.is(slow.code, 0);
  t.true(Date.now() - started >= 700);

  origin.setResolve(ID, { kind: 'url', url: 'file:///etc/passwd' });
  t.is((JSON.parse((await run(FAKE_YTDLP_PATH, ytdlpArgs(origin, ID))).stdout) as { url: string }).url, 'file:///etc/passwd');
});

test('fake yt-dlp: hang spawns a sleep child in its process group', async (t) => {
  const origin = await withOrigin(t);
  origin.setResolve(ID, { kind: 'hang' });
  const { spawn } = await import('node:child_process');
  // detached: a group of its own, so this test can kill exactly that group.
  const proc = spawn(FAKE_YTDLP_PATH, ytdlpArgs(origin, ID), { detached: true, stdio: 'ignore' });
  for (let i = 0; i < 100 && origin.hangingProcesses.length === 0; i++) await delay(50);
  const hung = origin.hangingProcesses[0];
  t.truthy(hung);
  if (!hung || proc.pid === undefined) return;
  t.is(hung.pid, proc.pid);
  t.is(hung.id, ID);
  t.true(isAlive(hung.childPid));
  process.kill(-proc.pid, 'SIGKILL');
  await new Promise((resolve) => proc.once('exit', resolve));
  for (let i = 0; i < 40 && isAlive(hung.childPid); i++) await delay(50);
  t.false(isAlive(hung.childPid), 'sleep child died with the group');
});

test('real yt-dlp (generic extractor) resolves the /watch page to a fetchable URL', async (t) => {
  if (!existsSync(REAL_YTDLP)) {
    t.log(`skipped: ${REAL_YTDLP} is not installed`);
    t.pass();
    return;
  }
  const origin = await withOrigin(t);
  for (const format of [[], ['-f', '18/b']]) {
    const r = await run(REAL_YTDLP, ['-J', '--no-playlist', '--no-warnings', ...format, '--', origin.pageUrl(ID)]);
    t.is(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout) as { url: string; title: string; extractor: string; http_headers: Record<string, string> };
    t.is(info.extractor, 'html5');
    t.is(info.title, `Test video ${ID} (1)`);
    t.is(info.http_headers['X-Origin-Token'], undefined, 'the real yt-dlp never learns the token');
    const body = await get(info.url, info.http_headers);
    t.is(body.status, 200);
    t.is(sha(body.body), sha(VIDEO));
  }
  t.is(origin.statsFor(ID).resolves, 2);

  const missing = await run(REAL_YTDLP, ['-J', '--no-playlist', '--no-warnings', '-f', '18/b', '--', origin.pageUrl('zzzzzzzzzzz')]);
  t.is(missing.code, 1);
  t.is(missing.stdout, 'null\n');
});
