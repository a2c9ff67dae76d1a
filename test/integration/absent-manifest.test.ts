/**
 * STORE_ABSENT_TTL: a video the store had no manifest for is not looked up
 * again within the TTL (a retry goes straight to the origin), and this node's
 * own manifest write ends that at once. Store GETs are read from the store
 * metrics (one per store request).
 */
import test from 'ava';
import { fixture, fixtureSha, startHarness, type Harness, type Node } from '../helpers/harness.js';

let h: Harness;
test.before(async () => {
  h = await startHarness();
});
test.after.always(() => h?.close());

async function storeGets(node: Node): Promise<number> {
  const metric = await node.service.metrics.storeOperations.get();
  return metric.values.filter((value) => value.labels.operation === 'get').reduce((sum, value) => sum + value.value, 0);
}

/** A first request the origin fails (503 on every try): it looks the manifest up in the store, finds none and fails. */
async function failedFirst(node: Node, id: string): Promise<void> {
  h.origin.setFault(id, { kind: 'status', status: 503, times: Infinity });
  const failed = await node.get(`/proxy/${id}`);
  h.origin.setFault(id, undefined);
  if (failed.status < 500) throw new Error(`expected the first request to fail, got ${failed.status}`);
}

/** A failed first request, then a retry: the retry's reply and the store GETs it made. */
async function retry(ttl: string) {
  const node = await h.node({ STORE_ABSENT_TTL: ttl });
  const id = h.video();
  await failedFirst(node, id);
  const before = await storeGets(node);
  const reply = await node.get(`/proxy/${id}`);
  const gets = (await storeGets(node)) - before;
  await node.close();
  return { reply, gets };
}

test('a retry within STORE_ABSENT_TTL skips the store lookup and is served by the origin', async (t) => {
  const { reply, gets } = await retry('1m');
  t.is(reply.status, 200);
  t.is(reply.sha256, fixtureSha);
  t.is(reply.headers['x-cache-status'], 'MISS');
  t.is(gets, 0, 'no store GET: the manifest was known to be absent');
});

test('STORE_ABSENT_TTL=0 asks the store every time', async (t) => {
  const { reply, gets } = await retry('0');
  t.is(reply.sha256, fixtureSha);
  t.is(gets, 1, 'one store GET: the manifest');
});

test("this node's manifest write forgets the absence: once memory drops the video, the store serves it", async (t) => {
  const node = await h.node({ STORE_ABSENT_TTL: '1m' });
  const id = h.video();
  await failedFirst(node, id);
  t.is((await node.get(`/proxy/${id}`)).headers['x-cache-status'], 'MISS');
  await node.service.cache.idle();
  const video = node.service.cache.video(id as Parameters<typeof node.service.cache.video>[0]);
  t.truthy(await node.service.store.getManifest(video, node.service.config.SLICE_BYTES), 'the head was persisted with its manifest');
  node.service.memory.deleteVideo(video);
  const again = await node.get(`/proxy/${id}`, { Range: 'bytes=0-999' });
  t.is(again.headers['x-cache-status'], h.store.hit);
  t.is(again.body.compare(fixture.subarray(0, 1000)), 0);
  await node.close();
});
