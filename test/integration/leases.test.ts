import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import test from 'ava';
import { createManifest, isHeadSlice, withPersisted, type Manifest } from '../../src/cache/manifest.js';
import { loadConfig } from '../../src/config.js';
import { isTubeError } from '../../src/errors.js';
import { createMetrics } from '../../src/metrics.js';
import { runDoctor } from '../../src/ops/doctor.js';
import { startServe, streamGet } from '../faults/support.js';
import { eventually, fixture, fixtureSha, sha256, startHarness, type Harness, type Node } from '../helpers/harness.js';
import { s3Error } from '../helpers/fault-proxy.js';
import { storedSlice } from '../helpers/slices.js';
import { chooseTestS3 } from '../helpers/s3.js';

// Leases need real conditional writes: Ceph RGW in CI (S3_TEST_ENDPOINT), MinIO in Docker otherwise.
const s3Choice = await chooseTestS3();
const s3Test = s3Choice.available ? test.serial : test.serial.skip;

let h: Harness;
test.before(async () => {
  if (s3Choice.available) h = await startHarness({ store: 's3' });
});
test.after.always(() => h?.close());

/** SLICE_BYTES of the harness. */
const SLICE = 256 * 1024;
/** A few MiB/s: slow enough that clients on every node overlap the first node's fetches. */
const ORIGIN_BYTES_PER_SECOND = 4 * 2 ** 20;

/** What `tubecache doctor` says about conditional writes on the harness's bucket. */
async function sharingCheck() {
  const checks = await runDoctor(loadConfig(h.env), { metrics: createMetrics() });
  return checks.find((check) => check.name === 'S3 conditional writes');
}

async function nodes(count: number, env: Record<string, string> = {}): Promise<Node[]> {
  return Promise.all(Array.from({ length: count }, () => h.node(env)));
}

s3Test('three nodes, ten cold clients each: one origin fetch per byte, one yt-dlp run, exact bytes everywhere', async (t) => {
  const cluster = await nodes(3);
  for (const node of cluster) t.is(node.service.leases.mode, 'leases', 'RGW has conditional writes');
  const id = h.video(fixture, { reportDuration: 30, bytesPerSecond: ORIGIN_BYTES_PER_SECOND });
  const replies = await Promise.all(cluster.flatMap((node) => Array.from({ length: 10 }, () => node.get(`/proxy/${id}`))));
  for (const [i, reply] of replies.entries()) {
    t.is(reply.status, 200, `client ${i}`);
    t.is(reply.sha256, fixtureSha, `client ${i}`);
  }
  const stats = h.origin.statsFor(id);
  t.log(`origin sent ${(stats.mediaBytes / fixture.length).toFixed(3)}× the video in ${stats.mediaRequests} requests; yt-dlp ran ${stats.resolves} time(s)`);
  t.true(stats.mediaBytes <= 1.05 * fixture.length, `origin bytes ${stats.mediaBytes} ≤ 1.05 × ${fixture.length}`);
  t.is(stats.resolves, 1, 'one yt-dlp run across the cluster');
  await Promise.all(cluster.map((node) => node.service.cache.idle()));
  const leases = async (outcome: string) => {
    let total = 0;
    for (const node of cluster) total += (await node.service.metrics.leases.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
    return total;
  };
  t.is(await leases('held'), Math.ceil(fixture.length / SLICE), 'one lease per slice across the cluster');
  t.true((await leases('followed')) > 0, 'the other nodes read what the holders uploaded');
  const readyz = JSON.parse((await cluster[0]!.get('/readyz')).body.toString());
  t.regex(readyz.checks.sharing.detail, /^leases/);
  t.like(await sharingCheck(), { status: 'ok' });
  await Promise.all(cluster.map((node) => node.close()));
});

s3Test('a store that refuses conditional writes: each node fetches on its own, with exact bytes', async (t) => {
  const conditional = (head: { headers: Record<string, string> }) => 'if-none-match' in head.headers || 'if-match' in head.headers;
  h.store.s3!.proxy.failRequests({ status: 501, body: s3Error('NotImplemented', 'conditional writes are not implemented'), count: Infinity, match: conditional });
  try {
    const pair = await nodes(2);
    for (const node of pair) t.is(node.service.leases.mode, 'per-node');
    const readyz = JSON.parse((await pair[0]!.get('/readyz')).body.toString());
    t.regex(readyz.checks.sharing.detail, /^per node/);
    t.like(await sharingCheck(), { status: 'warn' });
    const id = h.video(fixture, { reportDuration: 30, bytesPerSecond: ORIGIN_BYTES_PER_SECOND });
    const replies = await Promise.all(pair.flatMap((node) => Array.from({ length: 3 }, () => node.get(`/proxy/${id}`))));
    for (const reply of replies) t.is(reply.sha256, fixtureSha);
    t.is(h.origin.statsFor(id).resolves, 2, 'one yt-dlp run per node, as without leases');
    await Promise.all(pair.map((node) => node.service.cache.idle()));
    // Head slices are still persisted (plain puts), so a third node reads the head from S3.
    const later = await h.node();
    const before = h.origin.statsFor(id).mediaBytes;
    const reply = await later.get(`/proxy/${id}`, { Range: 'bytes=0-1023' });
    t.is(reply.headers['x-cache-status'], 'HIT-S3');
    t.is(h.origin.statsFor(id).mediaBytes, before);
    await Promise.all([...pair, later].map((node) => node.close()));
  } finally {
    h.store.s3!.proxy.clear();
  }
});

s3Test('a lease is renewed while held, taken over at once when released, and after LEASE_TTL on the S3 clock when its holder stops', async (t) => {
  // LEASE_WAIT well past LEASE_TTL (plus S3's whole-second clock): a waiter that gives up saw a live lease.
  // 3 s, renewed every 1 s: a renewal may come up to ~1 s late (a loaded CI machine) before the lease lapses on S3's clock.
  const env = { LEASE_TTL: '3s', LEASE_WAIT: '7s' };
  const [a, b] = await nodes(2, env);
  const video = a!.service.cache.video(h.video() as never);
  const key = a!.service.store.keys.lease(video, 3);
  const nothing = async () => undefined;
  const holder = async () => (await a!.service.store.store.head(key))?.metadata.node;

  const first = await a!.service.leases.claim(key, nothing);
  t.truthy(first.lease, 'the first claim creates the lease');
  const waited = await b!.service.leases.claim(key, nothing);
  t.deepEqual(waited, {}, 'a renewed lease is not taken over: the waiter gives up after LEASE_WAIT and fetches alone');
  t.is(await holder(), a!.service.leases.node);

  await first.lease!.release();
  const released = await b!.service.leases.claim(key, nothing);
  t.truthy(released.lease, 'a released lease is taken over');
  t.is(await holder(), b!.service.leases.node);

  // B stops renewing, as a node that died would: A takes over once the lease lapsed on S3's clock.
  b!.service.leases.close();
  const lapsed = await a!.service.leases.claim(key, nothing);
  t.truthy(lapsed.lease, 'a lapsed lease is taken over');
  t.is(await holder(), a!.service.leases.node);
  // The old holder's late writes are conditional on its etag: they never overwrite the new holder's lease.
  await released.lease!.release();
  t.is(await holder(), a!.service.leases.node);

  // Done: a claimant reads what the lease guards instead of fetching.
  t.true(await lapsed.lease!.share(async () => undefined, true));
  const done = await b!.service.leases.claim(key, async (state) => state && `shared=${state.shared}`);
  t.deepEqual(done, { found: 'shared=true' });
  await Promise.all([a!.close(), b!.close()]);
});

s3Test('a deferring claim (a node without the video\'s URL) leaves a missing lease to another node for 100 ms, and takes it itself after that', async (t) => {
  const [a, b] = await nodes(2);
  t.teardown(() => Promise.all([a!.close(), b!.close()]));
  const video = a!.service.cache.video(h.video() as never);
  const key = a!.service.store.keys.lease(video, 7);
  const found = async (done: unknown) => (done ? 'read where the done mark says' : undefined);
  // B asks first, A 30 ms later (its read-ahead, in the cluster): A holds the lease and B follows it.
  const deferred = b!.service.leases.claim(key, found, { defer: true });
  await new Promise((resolve) => setTimeout(resolve, 30));
  const first = await a!.service.leases.claim(key, found);
  t.truthy(first.lease, 'the node that claims at once holds the lease');
  t.true(await first.lease!.share(async () => undefined, true));
  t.deepEqual(await deferred, { found: 'read where the done mark says' });
  // Nobody else: a deferring claim creates the lease itself after 100 ms.
  const alone = a!.service.store.keys.lease(video, 8);
  const started = Date.now();
  const own = await b!.service.leases.claim(alone, found, { defer: true });
  t.truthy(own.lease);
  t.true(Date.now() - started >= 100, `held after ${Date.now() - started} ms`);
  await own.lease!.release();
});

/** Records the S3 requests that reach the harness's S3 proxy while `run` runs: when each head arrived, its method and key. */
async function s3Requests<T>(run: () => Promise<T>): Promise<{ result: T; sent: (method: string, key: string) => number | undefined }> {
  const proxy = h.store.s3!.proxy;
  const seen: { at: number; method: string; path: string }[] = [];
  const record = (head: { method: string; path: string }) => {
    seen.push({ at: performance.now(), method: head.method, path: decodeURIComponent(head.path.split('?')[0]!) });
    return false;
  };
  proxy.failRequests({ status: 500, count: Infinity, match: record });
  const result = await run().finally(() => proxy.clear());
  return { result, sent: (method, key) => seen.find((head) => head.method === method && head.path.endsWith(`/${key}`))?.at };
}

s3Test('a cold miss asks for the first lease beside the manifest, not after its answer; a lease a stored manifest made needless is released at once', async (t) => {
  const [a, b, c] = await nodes(3);
  t.teardown(() => Promise.all([a!.close(), b!.close(), c!.close()]));
  const id = h.video(fixture, { reportDuration: 30 });
  const video = a!.service.cache.video(id as never);
  const keys = a!.service.store.keys;
  const lease = keys.lease(video, 0);
  const head = keys.manifest(video);

  // 300 ms each way past the proxy: a GET's answer takes 600 ms or more.
  const cold = await s3Requests(() => {
    h.store.s3!.proxy.set({ latencyMs: 300 });
    return a!.get(`/proxy/${id}`);
  });
  t.is(cold.result.sha256, fixtureSha);
  const manifestGet = cold.sent('GET', head);
  const leasePut = cold.sent('PUT', lease);
  if (manifestGet === undefined || leasePut === undefined) return t.fail(`manifest GET at ${manifestGet}, lease PUT at ${leasePut}`);
  t.true(leasePut - manifestGet < 300, `the lease PUT left ${Math.round(leasePut - manifestGet)} ms after the manifest GET`);

  await a!.service.cache.idle();
  t.like((await a!.service.store.store.head(lease))?.metadata, { state: 'done', node: a!.service.leases.node });
  // A node that finds the manifest: its early put is refused by the done lease, which stays as it was.
  const warm = await s3Requests(() => b!.get(`/proxy/${id}`, { range: 'bytes=0-1023' }));
  t.is(warm.result.sha256, sha256(fixture.subarray(0, 1024)));
  t.not(warm.sent('PUT', lease), undefined, 'the early put was made');
  t.like((await a!.service.store.store.head(lease))?.metadata, { state: 'done', node: a!.service.leases.node });
  // Pruned (older than SHARED_TTL) while the manifest stays: a third node's early put creates the lease, then releases it.
  await a!.service.store.store.delete([lease]);
  t.is((await c!.get(`/proxy/${id}`, { range: 'bytes=0-1023' })).sha256, sha256(fixture.subarray(0, 1024)));
  await eventually(async () => (await c!.service.store.store.head(lease))?.metadata.state === 'released', 10_000, 'the needless lease released');
  t.is((await c!.service.store.store.head(lease))?.metadata.node, c!.service.leases.node);
});

s3Test('every lease write has an ETag of its own: a node taking back the lease it released leaves no stale ETag for another to match', async (t) => {
  const [a] = await nodes(1);
  t.teardown(() => a!.close());
  const key = a!.service.store.keys.lease(a!.service.cache.video(h.video() as never), 4);
  const nothing = async () => undefined;
  const first = await a!.service.leases.claim(key, nothing);
  await first.lease!.release();
  // What another node read just before this node took the lease back (with If-Match on that same ETag).
  const read = (await a!.service.store.store.head(key))!.etag;
  const again = await a!.service.leases.claim(key, nothing);
  t.truthy(again.lease, 'taken back');
  const late = a!.service.store.store.put(key, Buffer.from('another node'), { contentType: 'text/plain', ifMatch: read });
  t.true(isTubeError(await t.throwsAsync(late), 'PRECONDITION_FAILED'), 'a put on the ETag read before is refused');
  t.is((await a!.service.store.store.head(key))!.metadata.node, a!.service.leases.node, 'the other node\'s takeover was refused');
  await again.lease!.release();
});

s3Test('an early lease put more than a renewal period before its claim is renewed before the claim holds it', async (t) => {
  // Renewed every 1 s.
  const [a] = await nodes(1, { LEASE_TTL: '3s' });
  t.teardown(() => a!.close());
  const board = a!.service.leases;
  const video = a!.service.cache.video(h.video() as never);
  const nothing = async () => undefined;
  const etagOf = async (key: string) => (await a!.service.store.store.head(key))?.etag;

  const fresh = a!.service.store.keys.lease(video, 1);
  const quick = board.begin(fresh)!;
  const put = (await quick.write).etag;
  const held = await board.claim(fresh, nothing, { early: quick });
  t.truthy(held.lease);
  t.is(await etagOf(fresh), put, 'claimed at once: the early put is the lease, no second write');
  await held.lease!.release();

  const stale = a!.service.store.keys.lease(video, 2);
  const slow = board.begin(stale)!;
  const first = (await slow.write).etag;
  await new Promise((resolve) => setTimeout(resolve, 1_200));
  const renewed = await board.claim(stale, nothing, { early: slow });
  t.truthy(renewed.lease);
  t.not(await etagOf(stale), first, 'a renewal period later: rewritten (If-Match) before the claim returned');
  await renewed.lease!.release();
});

/**
 * Two nodes: A holds slice 5's lease and never marks it done (a holder between its upload and its done write);
 * B has learnt the video from slice 0. LEASE_WAIT 30 s: a follower that waited for the done mark would give up
 * after it and fetch the slice from the origin.
 */
async function slice5HeldByA() {
  const [a, b] = await nodes(2, { LEASE_WAIT: '30s' });
  const id = h.video(fixture, { reportDuration: 30 });
  const video = b!.service.cache.video(id as never);
  const index = 5;
  const lease = b!.service.store.keys.lease(video, index);
  const held = await a!.service.leases.claim(lease, async () => undefined);
  if ((await b!.get(`/proxy/${id}`, { range: 'bytes=0-1023' })).status !== 206) throw new Error('B did not learn the video');
  let manifest: Manifest | undefined;
  await eventually(async () => (manifest = await b!.service.store.getManifest(video, SLICE)) !== undefined, 10_000, 'the early manifest');
  const bytes = fixture.subarray(index * SLICE, (index + 1) * SLICE);
  /** B asks for slice 5; what the origin was asked for meanwhile. */
  const read = async () => {
    const asked = h.origin.statsFor(id).requests.length;
    const reply = await b!.get(`/proxy/${id}`, { range: `bytes=${index * SLICE}-${(index + 1) * SLICE - 1}` });
    return { reply, fetched: h.origin.statsFor(id).requests.slice(asked).map((request) => request.range ?? request.queryRange ?? '') };
  };
  const close = async () => {
    await held.lease!.release();
    await Promise.all([a!.close(), b!.close()]);
  };
  return { a: a!, b: b!, index, lease, held, manifest: manifest!, bytes, read, close };
}

s3Test('a follower reads a slice once its upload is complete, without waiting for the holder to mark the lease done', async (t) => {
  const { a, index, lease, held, manifest, bytes, read, close } = await slice5HeldByA();
  t.truthy(held.lease);
  t.false(isHeadSlice(manifest, index), 'beyond the head: shared/5');
  await a.service.store.putSlice(manifest, index, bytes, true);
  const { reply, fetched } = await read();
  t.is(reply.status, 206);
  t.is(reply.sha256, sha256(bytes));
  t.false(fetched.some((range) => range.includes(`${index * SLICE}-`)), `origin not asked for slice ${index}: ${fetched.join(', ')}`);
  t.is((await a.service.store.store.head(lease))?.metadata.state, 'held', 'read before any done mark');
  await close();
});

s3Test('a corrupt shared slice found by a follower: exact bytes from the origin, counted, and that object deleted', async (t) => {
  const { a, b, index, manifest, bytes, read, close } = await slice5HeldByA();
  const shared = a.service.store.keys.shared(manifest, index);
  const flipped = await storedSlice(bytes, manifest.etag);
  flipped[1000]! ^= 0xff;
  await a.service.store.store.put(shared, flipped);
  const { reply, fetched } = await read();
  t.is(reply.sha256, sha256(bytes));
  t.true(fetched.some((range) => range.includes(`${index * SLICE}-`)), 'the origin supplied the slice');
  t.is((await b.service.metrics.integrityFailures.get()).values.find((v) => v.labels.store === 's3')?.value, 1);
  t.is(await a.service.store.store.head(shared), undefined, 'the corrupt shared/5 is deleted, not slices/5');
  await close();
});

s3Test('the lease holder killed mid-video (a `tubecache serve` child, SIGKILL): the other nodes finish exact, origin bytes ≤ 1.5×', async (t) => {
  const video = randomBytes(4 * 2 ** 20);
  const id = h.video(video, { reportDuration: 30, bytesPerSecond: 2 ** 20 });
  const env = { ...h.env, LEASE_TTL: '2s', LEASE_WAIT: '60s', LOG_LEVEL: 'info' };
  const leader = await startServe(env);
  t.teardown(() => leader.child.kill('SIGKILL'));
  const leaderClients = Array.from({ length: 3 }, () => streamGet(`${leader.url}/proxy/${id}`));
  // The leader holds slice 0's lease and wrote the manifest once its first response arrived.
  await eventually(() => h.origin.statsFor(id).mediaBytes > 0, 30_000, 'the leader to fetch');
  const others = await nodes(2, { LEASE_TTL: '2s', LEASE_WAIT: '60s' });
  const replies = Promise.all(others.flatMap((node) => Array.from({ length: 5 }, () => node.get(`/proxy/${id}`))));
  await eventually(() => h.origin.statsFor(id).mediaBytes > video.length / 3, 60_000, 'the leader to be a third through');
  leader.child.kill('SIGKILL');
  await leader.exited;
  await Promise.all(leaderClients);
  for (const [i, reply] of (await replies).entries()) {
    t.is(reply.status, 200, `client ${i}`);
    t.is(reply.sha256, sha256(video), `client ${i}`);
  }
  const stats = h.origin.statsFor(id);
  t.log(`origin sent ${(stats.mediaBytes / video.length).toFixed(3)}× the video; yt-dlp ran ${stats.resolves} time(s)`);
  t.true(stats.mediaBytes <= 1.5 * video.length, `origin bytes ${stats.mediaBytes} ≤ 1.5 × ${video.length}`);
  await Promise.all(others.map((node) => node.close()));
});

s3Test('prune deletes shared slices and leases past SHARED_TTL, keeps the head; the video still reads exact', async (t) => {
  const [a] = await nodes(1);
  const id = h.video(fixture, { reportDuration: 30 });
  t.is((await a!.get(`/proxy/${id}`)).sha256, fixtureSha);
  await a!.service.cache.idle();
  const store = a!.service.store;
  const video = a!.service.cache.video(id as never);
  const count = async (prefix: string) => {
    let n = 0;
    for await (const page of store.list(prefix)) n += page.length;
    return n;
  };
  const shared = await count(`${store.keys.video(video)}shared/`);
  const heads = await count(`${store.keys.video(video)}slices/`);
  t.true(shared > 0 && heads > 0, `${heads} head slices, ${shared} shared`);
  t.true((await count(`${store.keys.leasesRoot}${id}/`)) > 0);

  const young = await a!.service.pruner.run();
  t.is(young.deleted.shared, 0, 'nothing is older than SHARED_TTL yet');
  const summary = await a!.service.pruner.run({ sharedTtlMs: 0 });
  t.true(summary.deleted.shared >= shared, `${summary.deleted.shared} shared objects deleted`);
  t.is(await count(`${store.keys.video(video)}shared/`), 0);
  t.is(await count(`${store.keys.leasesRoot}${id}/`), 0);
  t.is(await count(`${store.keys.video(video)}slices/`), heads, 'the head stays');

  const [b] = await nodes(1);
  const before = h.origin.statsFor(id).mediaBytes;
  t.is((await b!.get(`/proxy/${id}`)).sha256, fixtureSha);
  t.true(h.origin.statsFor(id).mediaBytes > before, 'past the head, the origin again');
  await Promise.all([a!.close(), b!.close()]);
});

s3Test('manifest writes are compare-and-swaps: two nodes recording slices at once lose none of each other\'s', async (t) => {
  const pair = await nodes(2);
  const video = pair[0]!.service.cache.video(h.video() as never);
  const base = createManifest(video, { contentType: 'video/mp4', size: 40 * 2 ** 20, duration: 600, lmt: undefined, sliceBytes: SLICE, headSlices: 2 });
  const record = (node: Node, index: number) => node.service.store.updateManifest(base, SLICE, (stored) => withPersisted(stored ?? base, [index]), true);
  // 16 at once: Ceph RGW answers some of 40 concurrent conditional puts on one key with 500 or not within the 2 s deadline.
  await Promise.all(Array.from({ length: 16 }, (_, index) => record(pair[index % 2]!, index)));
  const stored = await pair[0]!.service.store.getManifest(video, SLICE);
  t.deepEqual(stored?.persisted, Array.from({ length: 16 }, (_, index) => index));
  await Promise.all(pair.map((node) => node.close()));
});

s3Test('a leased slice streams to S3 while it arrives: each put begins before its slice is complete at the origin, and a fetch abandoned mid-slice stores nothing and releases its lease', async (t) => {
  const [a, b] = await nodes(2);
  const video = randomBytes(8 * SLICE);
  const id = h.video(video, { reportDuration: 30, bytesPerSecond: 2 * SLICE });
  // What the origin had sent when each slice's first put began (S3Store.put, seen from outside; a slice the
  // head plan adds later is put again to slices/ from memory).
  const store = a!.service.store.store;
  const put = store.put.bind(store);
  const begun = new Map<number, number>();
  store.put = (key, body, options) => {
    const index = /\/(?:slices|shared)\/(\d+)$/.exec(key)?.[1];
    if (index !== undefined && !begun.has(Number(index))) begun.set(Number(index), h.origin.statsFor(id).mediaBytes);
    return put(key, body, options);
  };
  t.is((await a!.get(`/proxy/${id}`)).sha256, sha256(video));
  await a!.service.cache.idle();
  t.is(begun.size, 8, 'every slice was shared under its lease');
  for (const [index, sent] of begun) t.true(sent < (index + 1) * SLICE, `slice ${index}'s put began with ${sent} bytes from the origin, before the slice's last byte`);
  // What was streamed is whole: the other node reads it all from S3.
  const asked = h.origin.statsFor(id).mediaBytes;
  t.is((await b!.get(`/proxy/${id}`)).sha256, sha256(video));
  t.is(h.origin.statsFor(id).mediaBytes, asked, 'the second node read every slice from S3');

  // A slice beyond the head whose only reader leaves half-way: the fetch is aborted, and its upload with it.
  const other = randomBytes(8 * SLICE);
  const otherId = h.video(other, { reportDuration: 30, bytesPerSecond: SLICE });
  const ref = a!.service.cache.video(otherId as never);
  const index = 6;
  t.is((await a!.get(`/proxy/${otherId}`, { range: 'bytes=0-1023' })).status, 206);
  const { manifest } = await a!.service.cache.manifest(ref);
  t.false(isHeadSlice(manifest, index), 'beyond the head');
  const lease = a!.service.store.keys.lease(ref, index);
  await new Promise<void>((resolve, reject) => {
    const req = request(`${a!.url}/proxy/${otherId}`, { headers: { range: `bytes=${index * SLICE}-${(index + 1) * SLICE - 1}` } }, (res) => {
      let received = 0;
      res.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received < SLICE / 4) return;
        req.destroy();
        resolve();
      });
    });
    req.on('error', reject);
    req.end();
  });
  await eventually(async () => (await store.head(lease))?.metadata.state === 'released', 10_000, 'the lease released');
  await a!.service.cache.idle();
  t.true(begun.has(index), 'its put had begun');
  t.is(await store.head(a!.service.store.keys.shared(manifest, index)), undefined, 'nothing stored for the abandoned slice');
  t.true(h.origin.statsFor(otherId).mediaBytes < (index + 1) * SLICE, 'the origin did not send the whole slice');
  await Promise.all([a!.close(), b!.close()]);
});
