import { request } from 'node:http';
import test, { type ExecutionContext } from 'ava';
import { childProcesses, isAlive } from '../helpers/processes.js';
import { eventually, fixture, fixtureSha, sha256, startHarness, type Harness, type Reply } from '../helpers/harness.js';

let h: Harness;
test.before(async () => {
  h = await startHarness();
});
test.after.always(() => h?.close());

const SLICE = 256 * 1024;
const errorOf = (body: Buffer) => JSON.parse(body.toString()).error as { code: string; message: string };
/** The reply is the JSON error `code` with `status`. */
const answersError = (t: ExecutionContext, reply: Reply, status: number, code: string) => {
  t.is(reply.status, status, code);
  t.is(errorOf(reply.body).code, code);
};
// Serial: ava runs it before the concurrent tests, so counting child processes sees only its own.
test.serial('a yt-dlp that hangs is killed with its whole process group after RESOLVE_TIMEOUT: 504, nothing left behind', async (t) => {
  const node = await h.node({ RESOLVE_TIMEOUT: '1s' });
  const id = h.video();
  h.origin.setResolve(id, { kind: 'hang' });
  const reply = await node.get(`/proxy/${id}`);
  answersError(t, reply, 504, 'YTDLP_TIMEOUT');
  const hung = h.origin.hangingProcesses.find((p) => p.id === id);
  t.truthy(hung, 'the stand-in reported its pids before hanging');
  await eventually(() => !isAlive(hung!.pid) && !isAlive(hung!.childPid), 5000, 'the process group to die');
  t.false(isAlive(hung!.childPid), 'its child (sleep 600) is gone too');
  t.deepEqual(childProcesses(), [], 'no child process left: no zombie, no orphan');
});

test('a missing yt-dlp is a 503 that names YTDLP_PATH, and readiness says so', async (t) => {
  const node = await h.node({ YTDLP_PATH: '/nonexistent/yt-dlp' });
  const reply = await node.get(`/proxy/${h.video()}`);
  answersError(t, reply, 503, 'YTDLP_MISSING');
  t.regex(errorOf(reply.body).message, /YTDLP_PATH/);
  const ready = await node.get('/readyz');
  t.is(ready.status, 503);
  const checks = JSON.parse(ready.body.toString()).checks;
  t.true(checks.store.ok);
  t.false(checks.ytdlp.ok);
  t.regex(checks.ytdlp.detail, /YTDLP_PATH/);
});

test('yt-dlp failures map to 404, 503 with Retry-After, or 502, each with its reason', async (t) => {
  const node = await h.node();
  const cases = [
    { stderr: 'ERROR: [youtube] x: Video unavailable. This video has been removed by the uploader', status: 404, code: 'VIDEO_UNAVAILABLE' },
    { stderr: 'ERROR: [youtube] x: Private video. Sign in if you have been granted access', status: 404, code: 'VIDEO_UNAVAILABLE' },
    { stderr: "ERROR: [youtube] x: Sign in to confirm you're not a bot. Use --cookies-from-browser or --cookies", status: 503, code: 'YTDLP_RESTRICTED' },
    { stderr: 'ERROR: [youtube] x: Sign in to confirm your age. This video may be inappropriate for some users.', status: 503, code: 'YTDLP_RESTRICTED' },
    { stderr: 'ERROR: unable to download video data: HTTP Error 429: Too Many Requests', status: 503, code: 'YTDLP_RESTRICTED' },
    { stderr: 'ERROR: [youtube] x: Unable to extract player version', status: 502, code: 'YTDLP_FAILED' },
  ];
  for (const { stderr, status, code } of cases) {
    const id = h.video();
    h.origin.setResolve(id, { kind: 'fail', stderr });
    const reply = await node.get(`/proxy/${id}`);
    t.is(reply.status, status, stderr);
    t.is(errorOf(reply.body).code, code, stderr);
    t.true(errorOf(reply.body).message.includes(stderr.slice(7, 60)), 'the reason is in the body');
    if (status === 503) t.is(reply.headers['retry-after'], '60');
  }
});

test('an unavailable video is remembered for NEGATIVE_TTL: no second yt-dlp run', async (t) => {
  const node = await h.node({ NEGATIVE_TTL: '1m' });
  const id = h.video();
  h.origin.removeVideo(id);
  t.is((await node.get(`/proxy/${id}`)).status, 404);
  t.is((await node.get(`/proxy/${id}`)).status, 404);
  t.is(h.origin.resolveCalls.filter((call) => call.id === id).length, 1);
});

test('a media URL off ORIGIN_ALLOWED_HOSTS, or not http(s), is a 502 and is never requested', async (t) => {
  const node = await h.node();
  for (const url of [(id: string) => h.origin.issueUrl(id).replace('127.0.0.1', 'localhost'), () => 'file:///etc/passwd']) {
    const id = h.video();
    h.origin.setResolve(id, { kind: 'url', url: url(id) });
    const reply = await node.get(`/proxy/${id}`);
    answersError(t, reply, 502, 'ORIGIN_HOST_NOT_ALLOWED');
    t.is(h.origin.statsFor(id).mediaRequests, 0);
  }
});

test('an origin that fails before the first byte is a 502 after ORIGIN_RETRIES retries', async (t) => {
  const node = await h.node({ ORIGIN_RETRIES: '2' });
  const id = h.video();
  h.origin.setFault(id, { kind: 'status', status: 503, times: Infinity });
  const reply = await node.get(`/proxy/${id}`);
  answersError(t, reply, 502, 'ORIGIN_FAILED');
  t.is(h.origin.statsFor(id).mediaRequests, 3, 'one try and two retries');
  t.false(JSON.stringify(errorOf(reply.body)).includes('127.0.0.1'), 'no internals in a 5xx body');
});

test('a reset mid-slice is resumed from the exact byte: the body is exact', async (t) => {
  const node = await h.node();
  const id = h.video();
  h.origin.setFault(id, { kind: 'reset', afterBytes: SLICE + 12_345 });
  const reply = await node.get(`/proxy/${id}`);
  t.is(reply.status, 200);
  t.is(reply.sha256, fixtureSha);
  const resumed = h.origin.statsFor(id).requests.find((r) => r.range === `bytes=${SLICE + 12_345}-${2 * SLICE - 1}`);
  t.truthy(resumed, 'the retry asked for the rest of the slice only');
});

test('when retries run out mid-stream the client gets a short body, never wrong bytes, and nothing is cached or persisted', async (t) => {
  const node = await h.node({ ORIGIN_RETRIES: '1' });
  const id = h.video(fixture, { reportDuration: 30 });
  h.origin.setFault(id, { kind: 'reset', afterBytes: SLICE + 1000, times: Infinity });
  const [first, second] = await Promise.all([node.get(`/proxy/${id}`), node.get(`/proxy/${id}`)]);
  for (const reply of [first, second]) {
    t.is(reply.status, 200);
    t.false(reply.complete, 'the response ends short');
    t.true(reply.body.length < fixture.length);
    t.is(reply.sha256, sha256(fixture.subarray(0, reply.body.length)), 'what arrived is a correct prefix');
  }
  await node.service.cache.idle();
  const video = node.service.cache.video(id as never);
  const manifest = node.service.memory.getManifest(video)!;
  t.is(node.service.memory.peekSlice(manifest, 1), undefined, 'the failed slice is not in memory');
  const stored = await node.service.store.getManifest(video, SLICE);
  t.false(stored?.persisted.includes(1) ?? false, 'nor in S3');
  t.is(await node.service.store.getText(node.service.store.keys.slice(manifest, 1)), undefined);

  h.origin.setFault(id, undefined);
  const healed = await node.get(`/proxy/${id}`);
  t.is(healed.sha256, fixtureSha, 'the next request fetches the slice again');
});

test('a 403 mid-stream re-resolves once and continues at the same byte; a second 403 fails', async (t) => {
  const node = await h.node();
  const id = h.video();
  h.origin.setFault(id, { kind: 'forbid-once', afterBytes: 2 * SLICE });
  const reply = await node.get(`/proxy/${id}`);
  t.is(reply.sha256, fixtureSha);
  t.is(h.origin.statsFor(id).resolves, 2, 'exactly one re-resolution');

  const stubborn = h.video();
  h.origin.setFault(stubborn, { kind: 'forbid-always' });
  const refused = await node.get(`/proxy/${stubborn}`);
  answersError(t, refused, 502, 'ORIGIN_FORBIDDEN');
  t.is(h.origin.statsFor(stubborn).resolves, 2);
});

test('an expired URL is resolved again exactly once and the body stays exact', async (t) => {
  const node = await h.node({ RESOLVE_MARGIN: '0s' });
  const id = h.video();
  const first = await node.get(`/proxy/${id}`, { Range: `bytes=0-${SLICE - 1}` });
  t.is(first.sha256, sha256(fixture.subarray(0, SLICE)));
  h.origin.revokeUrls(id); // every URL issued so far now answers 403, like after expire=
  const rest = await node.get(`/proxy/${id}`, { Range: `bytes=${SLICE}-` });
  t.is(rest.sha256, sha256(fixture.subarray(SLICE)));
  t.is(h.origin.statsFor(id).resolves, 2);
});

test('a resolution is reused until its expire= (less RESOLVE_MARGIN), then resolved again exactly once', async (t) => {
  const node = await h.node({ RESOLVE_MARGIN: '0s' });
  const id = h.video(fixture, { expiresInSeconds: 4 }); // the origin rounds expire= up: 4 to 5 s
  await node.get(`/proxy/${id}`, { Range: 'bytes=0-0' });
  const soon = await node.get(`/proxy/${id}`, { Range: `bytes=${2 * SLICE}-${2 * SLICE}` });
  t.is(soon.sha256, sha256(fixture.subarray(2 * SLICE, 2 * SLICE + 1)));
  t.is(h.origin.statsFor(id).resolves, 1, 'reused while valid');
  await new Promise((resolve) => setTimeout(resolve, 5100));
  // One slice: what follows the new resolution ends well inside its own 4 to 5 s, even on a loaded machine
  // (reading the rest of the video once outlived it and counted a third run).
  const later = await node.get(`/proxy/${id}`, { Range: `bytes=${4 * SLICE}-${5 * SLICE - 1}` });
  t.is(later.sha256, sha256(fixture.subarray(4 * SLICE, 5 * SLICE)));
  t.is(h.origin.statsFor(id).resolves, 2, 'one new resolution after expiry');
  t.true(h.origin.statsFor(id).requests.every((r) => r.status < 400), 'the expired URL was never sent');
});

test('googlevideo-style hosts get range= in the query and a 200 of exactly that length', async (t) => {
  const node = await h.node({ ORIGIN_RANGE_QUERY_HOSTS: '127.0.0.1' });
  const id = h.video(fixture, { rangeStyle: 'query' });
  const reply = await node.get(`/proxy/${id}`);
  t.is(reply.sha256, fixtureSha);
  const requests = h.origin.statsFor(id).requests;
  t.true(requests.length > 0);
  for (const r of requests) {
    t.is(r.range, undefined, 'no Range header');
    t.regex(r.queryRange ?? '', /^\d+-\d+$/);
    t.is(r.status, 200);
  }
});

test('no upstream request is longer than ORIGIN_MAX_RANGE', async (t) => {
  const node = await h.node({ ORIGIN_MAX_RANGE: '100000' });
  const id = h.video();
  const reply = await node.get(`/proxy/${id}`);
  t.is(reply.sha256, fixtureSha);
  for (const r of h.origin.statsFor(id).requests) {
    const [, a, b] = /bytes=(\d+)-(\d+)/.exec(r.range ?? '')!;
    t.true(Number(b) - Number(a) + 1 <= 100_000, r.range);
  }
  t.is(h.origin.statsFor(id).mediaBytes, fixture.length);
});

test('bytes that change at the origin invalidate the manifest instead of mixing versions', async (t) => {
  const node = await h.node();
  const id = h.video();
  const head = await node.get(`/proxy/${id}`, { Range: `bytes=0-${SLICE - 1}` });
  t.is(head.sha256, sha256(fixture.subarray(0, SLICE)));
  const reencoded = Buffer.concat([fixture.subarray(0, SLICE), Buffer.alloc(50_000, 7), fixture.subarray(SLICE)]);
  h.origin.replaceBytes(id, reencoded);
  const mixed = await node.get(`/proxy/${id}`, { Range: `bytes=${2 * SLICE}-${3 * SLICE - 1}` });
  answersError(t, mixed, 502, 'ORIGIN_CHANGED');
  const after = await node.get(`/proxy/${id}`);
  t.is(after.status, 200);
  t.is(after.sha256, sha256(reencoded), 'the new version, whole and exact');
  t.not(after.headers.etag, head.headers.etag);
});

test('at most YTDLP_CONCURRENCY yt-dlp runs at once; a full queue answers 503 with Retry-After', async (t) => {
  const node = await h.node({ YTDLP_CONCURRENCY: '3', YTDLP_QUEUE: '100' });
  const ids = Array.from({ length: 50 }, () => h.video());
  for (const id of ids) h.origin.setResolve(id, { kind: 'slow', ms: 150 });
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, node.service.resolver.running)), 2);
  const replies = await Promise.all(ids.map((id) => node.head(`/proxy/${id}`)));
  clearInterval(sampler);
  t.true(replies.every((reply) => reply.status === 200));
  t.true(peak <= 3, `peak ${peak}`);
  t.is(peak, 3, 'and the limit was reached');

  const tight = await h.node({ YTDLP_CONCURRENCY: '1', YTDLP_QUEUE: '1' });
  const more = Array.from({ length: 3 }, () => h.video());
  for (const id of more) h.origin.setResolve(id, { kind: 'slow', ms: 300 });
  const statuses = await Promise.all(more.map((id) => tight.head(`/proxy/${id}`)));
  const refused = statuses.filter((reply) => reply.status === 503);
  t.is(refused.length, 1);
  t.is(refused[0]!.headers['retry-after'], '5');
});

test('a client that leaves stops the upstream work nobody needs; another client still gets every byte', async (t) => {
  const node = await h.node({ HEAD_SECONDS: '1' });
  const id = h.video(fixture, { reportDuration: 30 });
  h.origin.setThrottle(id, 512 * 1024);
  // A client that reads a little past the head, then disappears.
  await new Promise<void>((resolve) => {
    const req = request(`${node.url}/proxy/${id}`, { agent: false }, (res) => {
      let received = 0;
      res.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > 2 * SLICE) {
          req.destroy();
          resolve();
        }
      });
    });
    req.end();
  });
  await eventually(async () => ((await node.service.metrics.flightsAborted.get()).values[0]?.value ?? 0) >= 1, 5000, 'the unneeded fetch to stop');
  await new Promise((resolve) => setTimeout(resolve, 300));
  const settled = h.origin.statsFor(id).mediaBytes;
  await new Promise((resolve) => setTimeout(resolve, 700));
  t.is(h.origin.statsFor(id).mediaBytes, settled, 'no more origin bytes once nobody reads');
  t.true(settled < 5 * SLICE, `origin sent ${settled} bytes for a client that read ~2 slices`);

  h.origin.setThrottle(id, undefined);
  const other = await node.get(`/proxy/${id}`);
  t.is(other.sha256, fixtureSha);
});

test('a body that stalls is cut by ORIGIN_IDLE_TIMEOUT and resumed; a late first byte by ORIGIN_FIRST_BYTE_TIMEOUT', async (t) => {
  // Generous timeouts: the origin, the node and the client share one event loop with the other tests' load.
  const node = await h.node({ ORIGIN_IDLE_TIMEOUT: '3s', ORIGIN_FIRST_BYTE_TIMEOUT: '3s', ORIGIN_RETRIES: '1' });
  const stalls = h.video();
  h.origin.setFault(stalls, { kind: 'hang-body', afterBytes: SLICE + 5000 });
  const resumed = await node.get(`/proxy/${stalls}`);
  t.is(resumed.status, 200);
  t.true(resumed.complete, 'the whole body arrived');
  t.is(resumed.sha256, fixtureSha);
  t.truthy(h.origin.statsFor(stalls).requests.find((r) => r.range === `bytes=${SLICE + 5000}-${2 * SLICE - 1}`));

  const late = h.video();
  h.origin.setVideo(late, { firstByteDelayMs: 30_000 });
  const timedOut = await node.get(`/proxy/${late}`);
  answersError(t, timedOut, 502, 'ORIGIN_FAILED');
});

test('an answer of the wrong length is an error, retried, and never cached', async (t) => {
  const node = await h.node();
  const id = h.video();
  h.origin.setFault(id, { kind: 'wrong-length' });
  const reply = await node.get(`/proxy/${id}`);
  t.is(reply.sha256, fixtureSha);
  const statuses = h.origin.statsFor(id).requests.map((r) => r.range);
  t.is(statuses.filter((range) => range === statuses[0]).length, 2, 'the short answer was asked again');
  const hit = await node.get(`/proxy/${id}`);
  t.is(hit.headers['x-cache-status'], 'HIT');
  t.is(hit.sha256, fixtureSha);
});

test('redirects are followed only to allowed hosts', async (t) => {
  const { createServer } = await import('node:http');
  const redirector = createServer((req, res) => {
    const target = new URL(req.url!, 'http://x').searchParams.get('to')!;
    res.writeHead(302, { Location: target }).end();
  });
  await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
  t.teardown(() => redirector.close());
  const via = (url: string) => `http://127.0.0.1:${(redirector.address() as { port: number }).port}/r?to=${encodeURIComponent(url)}`;
  const node = await h.node();

  const allowed = h.video();
  h.origin.setResolve(allowed, { kind: 'url', url: via(h.origin.issueUrl(allowed)) });
  const followed = await node.get(`/proxy/${allowed}`);
  t.is(followed.sha256, fixtureSha);

  const offList = h.video();
  h.origin.setResolve(offList, { kind: 'url', url: via(h.origin.issueUrl(offList).replace('127.0.0.1', 'localhost')) });
  const refused = await node.get(`/proxy/${offList}`);
  answersError(t, refused, 502, 'ORIGIN_HOST_NOT_ALLOWED');
  t.is(h.origin.statsFor(offList).mediaRequests, 0, 'no request to the host off the list');
});

test('YTDLP_EXTRA_ARGS reach yt-dlp before "--", request input never does', async (t) => {
  const node = await h.node({ YTDLP_EXTRA_ARGS: '["--socket-timeout", "7", "--proxy", "socks5://127.0.0.1:1"]' });
  const id = h.video();
  t.is((await node.head(`/proxy/${id}`)).status, 200);
  const argv = h.origin.resolveCalls.find((call) => call.id === id)!.argv;
  t.deepEqual(argv, ['-J', '--no-playlist', '--no-warnings', '-f', '18/b', '--socket-timeout', '7', '--proxy', 'socks5://127.0.0.1:1', '--', `${h.origin.url}/watch?v=${id}`]);
});
