import test, { type ExecutionContext } from 'ava';
import type { VideoId } from '../../src/origin/video-id.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { eventually, fixture, fixtureSha, sha256, startHarness, type Harness, type Node } from '../helpers/harness.js';
import { baseline, checkPersisted, faultAfter, serverConnections, streamGet, throughProxy } from './support.js';

// One origin fault at a time, through a fault proxy in front of the origin's media server
// (yt-dlp still reaches the origin directly). Serial: fd and socket counts are the process's.

const SLICE = 256 * 1024;
/** Generous bounds for a loaded machine. */
const ANSWER_MS = 60_000;
/** Short origin deadlines, so a frozen origin is given up on quickly. */
const ORIGIN_ENV = { ORIGIN_FIRST_BYTE_TIMEOUT: '1s', ORIGIN_IDLE_TIMEOUT: '1s', ORIGIN_RETRIES: '1' };

let h: Harness;
let proxy: FaultProxy;
test.before(async () => {
  h = await startHarness();
  proxy = await startFaultProxy({ target: h.origin.url, http: false });
});
test.afterEach.always(() => proxy.clear());
test.after.always(async () => {
  await proxy?.close();
  await h?.close();
});

/** A new video whose media requests go through the proxy. */
function proxiedVideo(): string {
  const id = h.video(fixture, { reportDuration: 30 });
  throughProxy(h.origin, proxy, id);
  return id;
}

/** What the store holds for the video is the fixture's bytes (head slices, possibly none). */
async function nothingWrongPersisted(t: ExecutionContext, node: Node, id: string) {
  await node.service.cache.idle();
  await checkPersisted(t, h.env, node.service.cache.video(id as VideoId), fixture);
}

/** The node let go of every client connection, closes, and leaves no fd behind. */
async function released(node: Node, before: ReturnType<typeof baseline>) {
  await eventually(() => serverConnections(Number(new URL(node.url).port)) === 0, 15_000, 'every client connection closed');
  await node.close();
  await before.restored();
}

test.serial('origin frozen before the first byte: 502 ORIGIN_FAILED, bounded by the origin deadlines', async (t) => {
  const before = baseline();
  const node = await h.node(ORIGIN_ENV);
  const id = proxiedVideo();
  proxy.set({ frozen: true });
  const started = performance.now();
  const reply = await node.get(`/proxy/${id}`);
  const ms = performance.now() - started;
  t.is(reply.status, 502);
  t.is(JSON.parse(reply.body.toString()).error.code, 'ORIGIN_FAILED');
  t.true(ms < ANSWER_MS, `answered in ${Math.round(ms)} ms`);
  t.log(`502 after ${Math.round(ms)} ms`);
  proxy.clear();
  await nothingWrongPersisted(t, node, id);
  await released(node, before);
});

test.serial('origin frozen mid-body: the body ends short but correct, and nothing wrong is persisted', async (t) => {
  const before = baseline();
  const node = await h.node(ORIGIN_ENV);
  const id = proxiedVideo();
  // Slow enough to freeze it half-way.
  proxy.set({ bandwidth: 400_000 });
  const reply = streamGet(`${node.url}/proxy/${id}`);
  await eventually(() => proxy.stats().bytesDown > SLICE, 30_000, 'a slice to pass');
  proxy.set({ frozen: true });
  const cut = await reply;
  t.is(cut.status, 200);
  t.false(cut.complete, 'the body ended short');
  t.true(cut.bytes > 0 && cut.bytes < fixture.length);
  t.is(cut.sha256, sha256(fixture.subarray(0, cut.bytes)), 'what arrived is the start of the video');
  t.true(cut.ms < ANSWER_MS);
  proxy.clear();
  await nothingWrongPersisted(t, node, id);
  await released(node, before);
});

test.serial('origin slow (1.5 s latency, 1 MB/s): exact body', async (t) => {
  const before = baseline();
  const node = await h.node();
  const id = proxiedVideo();
  proxy.set({ latencyMs: 1500, bandwidth: 1_000_000 });
  const reply = await streamGet(`${node.url}/proxy/${id}`);
  t.true(reply.complete);
  t.is(reply.sha256, fixtureSha);
  t.true(reply.ms < ANSWER_MS, `answered in ${Math.round(reply.ms)} ms`);
  proxy.clear();
  await nothingWrongPersisted(t, node, id);
  await released(node, before);
});

test.serial('origin reset mid-body: resumed at the exact byte, exact body', async (t) => {
  const before = baseline();
  const node = await h.node();
  const id = proxiedVideo();
  // One reset 100 KiB in, then a healthy origin again.
  const healed = faultAfter(proxy, 100 * 1024, { resetAfterBytes: 0 })
    .then(() => eventually(() => proxy.stats().resets >= 1, 30_000, 'a reset'))
    .then(() => proxy.clear());
  const reply = await streamGet(`${node.url}/proxy/${id}`);
  await healed;
  t.true(reply.complete);
  t.is(reply.sha256, fixtureSha);
  const starts = h.origin.statsFor(id).requests.map((request) => Number(/bytes=(\d+)-/.exec(request.range ?? '')?.[1]));
  t.true(
    starts.some((start) => start % SLICE !== 0),
    `a request resumed inside a slice: ${starts.join(', ')}`,
  );
  await nothingWrongPersisted(t, node, id);
  await released(node, before);
});
