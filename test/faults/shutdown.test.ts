import { randomBytes } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import type { FaultProxy } from '../helpers/fault-proxy.js';
import { eventually, fetchRaw, fixture, fixtureSha, sha256, startHarness, type Harness } from '../helpers/harness.js';
import { chooseTestS3 } from '../helpers/s3.js';
import { DEFAULT_S3_DEADLINES, startServe, streamGet } from './support.js';

/** Generous: the clients need ~20 s at 2 MB/s, more on a shared machine. */
const GRACE_MS = 90_000;
const CLIENTS = 20;
/** A ~40 MB video, paced by the origin at 2 MB/s per response. */
const video = randomBytes(40 * 2 ** 20);
const videoSha = sha256(video);

// On S3 (through the test S3's fault proxy) when there is one, so uploads and a frozen S3 are part of the
// shutdown; else on the disk store, without the frozen-S3 row.
const s3Choice = await chooseTestS3();
if (!s3Choice.available) console.log(`test/faults/shutdown.test.ts runs on the disk store, the S3 frozen row skipped: ${s3Choice.reason}`);
const s3Test = s3Choice.available ? test.serial : test.serial.skip;

let h: Harness;
let s3Proxy: FaultProxy | undefined;
test.before(async () => {
  h = await startHarness({ store: s3Choice.available ? 's3' : 'disk' });
  s3Proxy = h.store.s3?.proxy;
});
test.afterEach.always(() => s3Proxy?.clear());
test.after.always(() => h?.close());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether connecting to `url` is refused within `ms`. */
async function refusedWithin(url: string, ms: number): Promise<boolean> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await sleep(50)) {
    try {
      await fetchRaw(`${url}/healthz`);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ECONNREFUSED') return true;
    }
  }
  return false;
}

/** Resolves once the origin is sending `id`: the request is in flight (a connection whose request has not been read yet is idle, and closed at once). */
const streaming = (id: string) => eventually(() => h.origin.statsFor(id).mediaBytes > 0, 30_000, 'the origin to send');

const env = () => ({ ...h.env, ...DEFAULT_S3_DEADLINES, SLICE_BYTES: '1MiB', SHUTDOWN_GRACE: `${GRACE_MS / 1000}s` });

/**
 * 20 clients stream the 40 MB video from a real `tubecache serve`; `beforeSignal`
 * runs 1 s after the origin started sending, then SIGTERM. Every body must be whole and exact, and the process
 * must exit 0 within the grace.
 */
async function drainsOnSigterm(t: ExecutionContext, beforeSignal: () => void) {
  t.timeout(4 * GRACE_MS);
  const id = h.video(video, { contentType: 'video/mp4', bytesPerSecond: 2e6, reportDuration: 60 });
  const serve = await startServe(env());
  t.teardown(() => serve.child.kill('SIGKILL'));
  const replies = Array.from({ length: CLIENTS }, () => streamGet(`${serve.url}/proxy/${id}`));
  await streaming(id);
  await sleep(1000);
  beforeSignal();
  const signalled = Date.now();
  serve.child.kill('SIGTERM');

  // Soon after the signal a new client is refused: the listener is closed while the responses run on.
  t.true(await refusedWithin(serve.url, 10_000), 'new connections are refused');
  for (const reply of await Promise.all(replies)) {
    t.is(reply.status, 200);
    t.true(reply.complete, 'the whole body arrived');
    t.is(reply.sha256, videoSha);
  }
  const exit = await serve.exited;
  t.is(exit.code, 0);
  t.true(exit.at - signalled < GRACE_MS, `exited ${exit.at - signalled} ms after SIGTERM`);
  t.true(serve.logs.some((entry) => entry.msg === 'shut down'));
  return exit.at - signalled;
}

test.serial('SIGTERM while 20 clients stream a 40 MB video: every body is complete and exact, then exit 0 within SHUTDOWN_GRACE', async (t) => {
  const ms = await drainsOnSigterm(t, () => undefined);
  t.log(`exit ${ms} ms after SIGTERM, ${CLIENTS} clients served to the end`);
});

s3Test('the same with S3 frozen: the clients still get every byte, uploads are given up, exit 0 within SHUTDOWN_GRACE', async (t) => {
  const ms = await drainsOnSigterm(t, () => s3Proxy!.set({ frozen: true }));
  t.log(`exit ${ms} ms after SIGTERM with S3 frozen`);
});

test.serial('a second signal exits at once, without waiting for the responses in flight', async (t) => {
  const id = h.video(video, { contentType: 'video/mp4', bytesPerSecond: 1e6 });
  const serve = await startServe(env());
  t.teardown(() => serve.child.kill('SIGKILL'));
  const reply = streamGet(`${serve.url}/proxy/${id}`);
  await streaming(id);
  serve.child.kill('SIGTERM');
  await sleep(500);
  const second = Date.now();
  serve.child.kill('SIGTERM');
  const exit = await serve.exited;
  t.is(exit.code, 128 + 15, 'exit code 128 + SIGTERM');
  // The response needed ~40 s more: it was cut, not drained.
  t.true(exit.at - second < GRACE_MS / 3, `exited ${exit.at - second} ms after the second signal`);
  t.log(`exit ${exit.at - second} ms after the second signal`);
  const cut = await reply;
  t.false(cut.complete, 'the response in flight was cut short');
  t.is(cut.sha256, sha256(video.subarray(0, cut.bytes)), 'what arrived is a correct prefix');
});

test.serial('while closing, readiness says "shutting down" at once (/readyz 503) and the response in flight ends whole', async (t) => {
  const node = await h.node();
  const id = h.video(fixture, { bytesPerSecond: 500_000 });
  const reply = streamGet(`${node.url}/proxy/${id}`);
  await streaming(id);
  const closing = node.service.close(GRACE_MS);
  const started = performance.now();
  t.deepEqual(await node.service.readiness(), { shutdown: { ok: false, detail: 'shutting down' } });
  t.true(performance.now() - started < 100, 'without running the checks');
  const whole = await reply;
  t.true(whole.complete);
  t.is(whole.sha256, fixtureSha);
  await closing;
});

test.serial('a response still running when the grace ends is cut, and close returns', async (t) => {
  const node = await h.node();
  const id = h.video(fixture, { bytesPerSecond: 100_000 });
  const reply = streamGet(`${node.url}/proxy/${id}`);
  await streaming(id);
  await node.service.close(1000);
  const cut = await reply;
  t.false(cut.complete, 'cut at the end of the grace');
  t.is(cut.sha256, sha256(fixture.subarray(0, cut.bytes)));
});
