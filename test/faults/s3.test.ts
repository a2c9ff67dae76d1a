import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { S3DeadlineError } from '../../src/cache/s3-deadlines.js';
import { S3Store, s3SettingsFrom } from '../../src/cache/s3-store.js';
import { readAll } from '../../src/cache/store.js';
import { loadConfig } from '../../src/config.js';
import { isTubeError } from '../../src/errors.js';
import type { VideoId } from '../../src/origin/video-id.js';
import { slowDown, type FaultProxy } from '../helpers/fault-proxy.js';
import { fixture, fixtureSha, sha256, startHarness, type Harness, type Node } from '../helpers/harness.js';
import { chooseTestS3 } from '../helpers/s3.js';
import { baseline, checkPersisted, DEFAULT_S3_DEADLINES, faultAfter, streamGet } from './support.js';

// One S3 fault at a time, each through the fault proxy in front of the test's real S3 server
// (RGW from S3_TEST_ENDPOINT in CI). Serial: the fd and socket counts are the whole process's.

const s3Choice = await chooseTestS3();
if (!s3Choice.available) console.log(`test/faults/s3.test.ts skipped: ${s3Choice.reason}`);
const s3Test = s3Choice.available ? test.serial : test.serial.skip;

const SLICE = 256 * 1024;
const SLICES = Math.ceil(fixture.length / SLICE);
/** Generous bounds for a loaded machine; the figures are logged. */
const ANSWER_MS = 30_000;

let h: Harness;
let proxy: FaultProxy;
test.before(async () => {
  if (!s3Choice.available) return;
  h = await startHarness({ store: 's3' });
  proxy = h.store.s3!.proxy;
});
test.afterEach.always(() => proxy?.clear());
test.after.always(() => h?.close());

/** Every slice in S3 (through the proxy, as h.env), with the S3 deadlines as shipped. */
const env = () => ({ PERSIST: 'full', ...DEFAULT_S3_DEADLINES });

/**
 * A video whose every slice a first node persisted; the node is closed again.
 * The writer runs with the harness's relaxed deadlines: it only prepares the
 * store, and on a loaded machine a 2 s deadline could fail one of its uploads.
 */
async function persistedVideo(t: ExecutionContext): Promise<string> {
  const id = h.video(fixture, { reportDuration: 30 });
  const writer = await h.node({ PERSIST: 'full' });
  const reply = await writer.get(`/proxy/${id}`);
  if (reply.sha256 !== fixtureSha) throw new Error('the first node served wrong bytes');
  await writer.service.cache.idle();
  await writer.close();
  t.is((await checkPersisted(t, h.env, ref(writer, id), fixture)).length, SLICES, 'the writer persisted every slice');
  return id;
}

const ref = (node: Node, id: string) => node.service.cache.video(id as VideoId);
const metricsOf = async (node: Node) => (await node.get('/metrics')).body.toString();

/** The whole fixture, exact, from `node`, within ANSWER_MS. */
async function servesExactly(t: ExecutionContext, node: Node, id: string) {
  const reply = await streamGet(`${node.url}/proxy/${id}`);
  t.is(reply.status, 200);
  t.true(reply.complete, 'every byte arrived');
  t.is(reply.sha256, fixtureSha);
  t.true(reply.ms < ANSWER_MS, `answered in ${Math.round(reply.ms)} ms`);
  return reply;
}

/** What S3 holds for the video is the source's bytes (read with the proxy cleared), and every slice is still there. */
async function persistedIntact(t: ExecutionContext, node: Node, id: string) {
  t.is((await checkPersisted(t, h.env, ref(node, id), fixture)).length, SLICES);
}

for (const [name, fault] of [
  ['frozen (accepts, answers nothing)', { frozen: true }],
  ['slow (5 s latency)', { latencyMs: 5000 }],
] as const) {
  s3Test(`S3 ${name}: persisted bytes come from the origin at once, /readyz answers 503 naming the store, close does not wait`, async (t) => {
    const id = await persistedVideo(t);
    const before = baseline();
    const node = await h.node(env());
    proxy.set(fault);

    const first = await servesExactly(t, node, id);
    t.log(`GET of persisted bytes with S3 ${name}: headers after ${Math.round(first.headersMs)} ms, body after ${Math.round(first.ms)} ms`);
    t.regex(await metricsOf(node), /tubecache_store_operations_total\{store="s3",operation="get",outcome="error"\} 1\b/, 'one S3 failure, then S3 is skipped');
    const second = await servesExactly(t, node, id);
    t.log(`second GET (S3 skipped): body after ${Math.round(second.ms)} ms`);

    const started = performance.now();
    const ready = await node.get('/readyz');
    const readyMs = performance.now() - started;
    t.is(ready.status, 503);
    const store = JSON.parse(ready.body.toString()).checks.store;
    t.false(store.ok);
    t.regex(store.detail, /S3_FIRST_BYTE_TIMEOUT|no answer within/);
    t.true(readyMs < 10_000, `/readyz in ${Math.round(readyMs)} ms`);
    t.log(`/readyz with S3 ${name}: ${Math.round(readyMs)} ms`);

    const closing = performance.now();
    await node.close();
    t.log(`close with S3 ${name}: ${Math.round(performance.now() - closing)} ms`);
    proxy.clear();
    await persistedIntact(t, node, id);
    await before.restored();
  });
}

/**
 * Past the manifest (~1 KiB) and two 64 KiB chunks of the first slice that passed their digest check
 * (slice-codec.ts), short of the slice's end: the origin continues from the last checked byte.
 */
const CUT_AT = 160 * 1024;

const midSlice = {
  'reset mid-slice': { logged: /ECONNRESET|aborted|socket hang up/, toxics: { resetAfterBytes: 0 } },
  // S3_IDLE_TIMEOUT fires.
  'stalled mid-slice': { logged: /S3_IDLE_TIMEOUT/, toxics: { frozen: true } },
};

for (const [name, fault] of Object.entries(midSlice)) {
  s3Test(`S3 ${name}: the slice continues from the origin at the last byte checked`, async (t) => {
    const id = await persistedVideo(t);
    const before = baseline();
    const warnings: string[] = [];
    const node = await h.node(env(), undefined, pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) }));
    const originBefore = h.origin.statsFor(id).requests.length;
    const bytesBefore = proxy.stats().bytesDown;
    const reply = servesExactly(t, node, id);
    await faultAfter(proxy, CUT_AT, fault.toxics);
    await reply;
    t.true(
      warnings.some((line) => line.includes('continuing from the origin') && fault.logged.test(line)),
      'the S3 slice read failed for that reason',
    );
    t.true(proxy.stats().bytesDown - bytesBefore > SLICE / 8, 'part of the slice came from S3');
    t.regex(await metricsOf(node), /tubecache_store_operations_total\{store="s3",operation="get-slice",outcome="ok"\} [1-9]/, 'a slice read began');
    const starts = h.origin.statsFor(id).requests.slice(originBefore).map((request) => Number(/bytes=(\d+)-/.exec(request.range ?? '')?.[1]));
    t.true(
      starts.some((start) => start % SLICE !== 0),
      `the origin was asked from inside a slice (where S3 stopped): ${starts.join(', ')}`,
    );
    await node.close();
    proxy.clear();
    await persistedIntact(t, node, id);
    await before.restored();
  });
}

s3Test('S3 503 SlowDown once: the SDK retries it and the bytes still come from S3', async (t) => {
  const id = await persistedVideo(t);
  const before = baseline();
  const node = await h.node(env());
  proxy.failRequests({ ...slowDown, match: (head) => head.method === 'GET' && head.path.includes('/slices/') });
  const originBytes = h.origin.statsFor(id).mediaBytes;

  await servesExactly(t, node, id);
  t.is(proxy.stats().httpFaults, 1);
  t.is(h.origin.statsFor(id).mediaBytes, originBytes, 'no byte from the origin');
  await node.close();
  await persistedIntact(t, node, id);
  await before.restored();
});

s3Test('S3 503 SlowDown on every request: reads come from the origin, uploads fail, nothing wrong is persisted', async (t) => {
  const before = baseline();
  const node = await h.node(env());
  proxy.failRequests({ ...slowDown, count: Number.MAX_SAFE_INTEGER });
  const id = h.video(fixture, { reportDuration: 30 });

  await servesExactly(t, node, id);
  await servesExactly(t, node, id);
  await node.service.cache.idle();
  t.true(proxy.stats().httpFaults >= 1);
  t.regex(await metricsOf(node), /tubecache_store_operations_total\{store="s3",operation="[\w-]+",outcome="error"\} [1-9]/);
  await node.close();
  proxy.clear();
  t.deepEqual(await checkPersisted(t, h.env, ref(node, id), fixture), [], 'nothing persisted while S3 refused');
  await before.restored();
});

s3Test('a streamed put (a slice still arriving): waits on its own bytes do not count against S3_FIRST_BYTE_TIMEOUT; S3 frozen fails it within the deadline and stores nothing', async (t) => {
  const store = new S3Store(s3SettingsFrom(loadConfig({ ...h.env, ...DEFAULT_S3_DEADLINES, S3_FIRST_BYTE_TIMEOUT: '500ms' })));
  t.teardown(() => store.close());
  const bytes = randomBytes(300_000);
  // 2.1 s of waiting for bytes, each wait longer than the deadline.
  async function* arriving(sent?: () => number): AsyncGenerator<Buffer> {
    for (let at = 0; at < bytes.length; at += 100_000) {
      await sleep(700);
      // Streamed, not collected first: what came before this piece is already on its way to S3.
      if (sent) t.true(sent() >= at, `${sent()} bytes sent to S3 before the piece at ${at}`);
      yield bytes.subarray(at, at + 100_000);
    }
  }
  const before = proxy.stats().bytesUp;
  await store.put('streamed', arriving(() => proxy.stats().bytesUp - before), { length: bytes.length });
  t.is(sha256((await readAll(store, 'streamed'))!), sha256(bytes));

  proxy.set({ frozen: true });
  const started = performance.now();
  const error = await t.throwsAsync(store.put('streamed-frozen', arriving(), { length: bytes.length }));
  const ms = performance.now() - started;
  t.log(`streamed put with S3 frozen: failed after ${Math.round(ms)} ms (2,100 ms of it waiting for its own bytes)`);
  t.true(isTubeError(error, 'STORE_ERROR'), String(error));
  t.true((error as Error).cause instanceof S3DeadlineError, String((error as Error).cause));
  t.true(ms < ANSWER_MS);
  proxy.clear();
  t.is(await store.head('streamed-frozen'), undefined);
});
