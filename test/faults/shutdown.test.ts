import { randomBytes } from 'node:crypto';
import test from 'ava';
import { fetchRaw, sha256, startHarness, type Harness } from '../helpers/harness.js';
import { startServe } from './support.js';

/** Generous: the clients need ~20 s at 2 MB/s, and the machine running the tests is shared. */
const GRACE_MS = 90_000;
const CLIENTS = 20;
/** A ~40 MB video, paced by the origin at 2 MB/s per response. */
const video = randomBytes(40 * 2 ** 20);
const videoSha = sha256(video);

let h: Harness;
test.before(async () => {
  h = await startHarness();
});
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

const env = () => ({ ...h.env, SLICE_BYTES: '1MiB', SHUTDOWN_GRACE: `${GRACE_MS / 1000}s` });

test.serial('SIGTERM while 20 clients stream a 40 MB video: every body is complete and exact, then exit 0 within SHUTDOWN_GRACE', async (t) => {
  const id = h.video(video, { contentType: 'video/mp4', bytesPerSecond: 2e6 });
  const serve = await startServe(env());
  t.teardown(() => serve.child.kill('SIGKILL'));
  const replies = Array.from({ length: CLIENTS }, () => fetchRaw(`${serve.url}/proxy/${id}`));
  await sleep(1000);
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
  t.log(`exit ${exit.at - signalled} ms after SIGTERM, ${CLIENTS} clients served to the end`);
  t.true(serve.logs.some((entry) => entry.msg === 'shut down'));
});

test.serial('a second signal exits at once, without waiting for the responses in flight', async (t) => {
  const id = h.video(video, { contentType: 'video/mp4', bytesPerSecond: 1e6 });
  const serve = await startServe(env());
  t.teardown(() => serve.child.kill('SIGKILL'));
  const reply = fetchRaw(`${serve.url}/proxy/${id}`);
  await sleep(1000);
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
  t.is(cut.sha256, sha256(video.subarray(0, cut.body.length)), 'what arrived is a correct prefix');
});
