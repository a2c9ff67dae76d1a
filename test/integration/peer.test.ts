/**
 * Streaming a slice from the node that holds its lease (PEER_URL, PEER_TOKEN), against a real
 * S3 with conditional writes: the waiting node serves the slice while the holder still fetches
 * it, every chunk checked against its digest; a holder that dies, lies or freezes costs origin
 * bytes, never a wrong byte or a hang.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import type { Manifest } from '../../src/cache/manifest.js';
import { startServe, streamGet } from '../faults/support.js';
import { eventually, fixture, freePort, sha256, startHarness, type Harness, type Node } from '../helpers/harness.js';
import { rawRequest } from '../helpers/raw-http.js';
import { storedSlice } from '../helpers/slices.js';
import { chooseTestS3 } from '../helpers/s3.js';

const s3Choice = await chooseTestS3();
const s3Test = s3Choice.available ? test.serial : test.serial.skip;

let h: Harness;
test.before(async () => {
  if (s3Choice.available) h = await startHarness({ store: 's3' });
});
test.after.always(() => h?.close());

/** SLICE_BYTES of the harness. */
const SLICE = 256 * 1024;
const TOKEN = 'peer-test-token-0123456789';

/** What a node needs to be asked by the others: its own address, known before it starts. */
async function peerEnv(): Promise<Record<string, string>> {
  const port = await freePort();
  return { PORT: String(port), PEER_URL: `http://127.0.0.1:${port}`, PEER_TOKEN: TOKEN };
}

async function peerNodes(count: number, env: Record<string, string> = {}): Promise<Node[]> {
  return Promise.all(Array.from({ length: count }, async () => h.node({ ...(await peerEnv()), ...env })));
}

const counted = async (node: Node, metric: 'peerReads' | 'leases' | 'integrityFailures', label: string) =>
  (await node.service.metrics[metric].get()).values.filter((v) => Object.values(v.labels).includes(label)).reduce((sum, v) => sum + v.value, 0);

s3Test('a follower streams a slice from its lease holder while the holder still fetches it: exact bytes before the slice is complete at the origin', async (t) => {
  const [a, b] = await peerNodes(2);
  t.teardown(() => Promise.all([a!.close(), b!.close()]));
  const video = randomBytes(3 * SLICE);
  // 64 KiB/s: slice 0 takes 4 s at the origin.
  const id = h.video(video, { reportDuration: 30, bytesPerSecond: 64 * 1024 });
  const leader = streamGet(`${a!.url}/proxy/${id}`);
  const ref = b!.service.cache.video(id as never);
  await eventually(async () => (await b!.service.store.getManifest(ref, SLICE)) !== undefined, 10_000, 'the leader\'s early manifest');
  // The first integrity chunk: the follower can serve it once the holder has it, not once S3 has the whole slice.
  const first = await b!.get(`/proxy/${id}`, { Range: 'bytes=0-65535' });
  const sentByThen = h.origin.statsFor(id).mediaBytes;
  t.is(first.status, 206);
  t.is(first.sha256, sha256(video.subarray(0, 65536)));
  t.true(sentByThen < SLICE, `the origin had sent ${sentByThen} bytes, less than slice 0, when the follower's answer was complete`);
  t.true((await counted(b!, 'peerReads', 'streamed')) >= 1);
  t.true((await counted(b!, 'leases', 'streamed')) >= 1);
  // The rest, while the leader goes on: one origin fetch per byte between the two nodes.
  const whole = await b!.get(`/proxy/${id}`);
  t.is(whole.sha256, sha256(video));
  t.is((await leader).sha256, sha256(video));
  const stats = h.origin.statsFor(id);
  t.is(stats.mediaBytes, video.length, 'the origin sent each byte once');
  t.is(stats.resolves, 1);
});

s3Test('three nodes streaming from each other, ten cold clients each: one origin fetch per byte, one yt-dlp run, exact bytes everywhere', async (t) => {
  const cluster = await peerNodes(3);
  t.teardown(() => Promise.all(cluster.map((node) => node.close())));
  // Long enough at 2 MiB/s for the followers to catch up with the holder and stream from it.
  const video = randomBytes(24 * SLICE);
  const id = h.video(video, { reportDuration: 30, bytesPerSecond: 2 * 2 ** 20 });
  const replies = await Promise.all(cluster.flatMap((node) => Array.from({ length: 10 }, () => node.get(`/proxy/${id}`))));
  for (const [i, reply] of replies.entries()) t.is(reply.sha256, sha256(video), `client ${i}`);
  const stats = h.origin.statsFor(id);
  t.log(`origin sent ${(stats.mediaBytes / video.length).toFixed(3)}× the video; yt-dlp ran ${stats.resolves} time(s)`);
  t.true(stats.mediaBytes <= 1.05 * video.length, `origin bytes ${stats.mediaBytes} ≤ 1.05 × ${video.length}`);
  t.is(stats.resolves, 1);
  let streamed = 0;
  for (const node of cluster) streamed += await counted(node, 'leases', 'streamed');
  t.true(streamed > 0, `${streamed} slices streamed from their holders`);
});

/**
 * A `tubecache serve` leader whose origin stalls `into` bytes into slice 2, two in-process followers with two clients
 * each streaming it from the leader, then the leader SIGKILLed: every client's body, the origin's requests.
 */
async function killHolderInSlice2(t: ExecutionContext, video: Buffer, into: number) {
  const id = h.video(video, { reportDuration: 30 });
  h.origin.setFault(id, { kind: 'hang-body', afterBytes: 2 * SLICE + into, times: 1 });
  // What the followers can have of slice 2 from the leader: its checked 64 KiB chunks, none of it from S3.
  const checked = 2 * SLICE + Math.floor(into / (64 * 1024)) * 64 * 1024;
  // LEASE_TTL is also how long a follower waits on a silent holder: longer than the test takes to kill it.
  const env = { LEASE_TTL: '5s', LEASE_WAIT: '60s' };
  const leader = await startServe({ ...h.env, ...(await peerEnv()), ...env });
  t.teardown(() => leader.child.kill('SIGKILL'));
  const leaderClient = streamGet(`${leader.url}/proxy/${id}`);
  await eventually(async () => h.origin.statsFor(id).mediaBytes >= 2 * SLICE + into, 30_000, 'the leader to stall in slice 2');
  const others = await peerNodes(2, env);
  t.teardown(() => Promise.all(others.map((node) => node.close())));
  const received = [0, 0, 0, 0];
  const replies = Promise.all(others.flatMap((node, n) => [0, 1].map((c) => streamGet(`${node.url}/proxy/${id}`, { onData: (bytes) => (received[2 * n + c] = bytes) }))));
  const streaming = async () => (await Promise.all(others.map((node) => counted(node, 'peerReads', 'streamed')))).every((count) => count >= 1);
  await eventually(async () => received.every((bytes) => bytes >= checked) && (await streaming()), 30_000, `every follower client to have ${checked} bytes, streamed from the leader`);
  // Slice 2 is claimed by the read-ahead long before a client reaches it; a moment more for its stream from the leader to be open.
  await new Promise((resolve) => setTimeout(resolve, 300));
  leader.child.kill('SIGKILL');
  await leader.exited;
  await leaderClient;
  for (const [i, reply] of (await replies).entries()) {
    t.true(reply.complete, `client ${i}`);
    t.is(reply.sha256, sha256(video), `client ${i}`);
  }
  const stats = h.origin.statsFor(id);
  t.log(`origin sent ${(stats.mediaBytes / video.length).toFixed(3)}× the video; yt-dlp ran ${stats.resolves} time(s)`);
  t.true(stats.mediaBytes <= 1.5 * video.length, `origin bytes ${stats.mediaBytes} ≤ 1.5 × ${video.length}`);
  return { id, others, checked, ranges: stats.requests.map((request) => request.range ?? request.queryRange ?? '') };
}

s3Test('the holder killed (SIGKILL) while followers stream a slice from it: they finish exact, from the origin at the last byte checked', async (t) => {
  const video = randomBytes(6 * SLICE);
  const { checked, ranges } = await killHolderInSlice2(t, video, 100_000);
  t.true(ranges.includes(`bytes=${checked}-${3 * SLICE - 1}`), `slice 2 continued from the origin at byte ${checked}: ${ranges.join(' ')}`);
});

s3Test('the holder killed before the first byte of a slice the followers wait on from it: one of them takes the lease over and the other follows it', async (t) => {
  const video = randomBytes(6 * SLICE);
  const { id, others, ranges } = await killHolderInSlice2(t, video, 0);
  const slice2 = `bytes=${2 * SLICE}-${3 * SLICE - 1}`;
  t.is(ranges.filter((range) => range === slice2).length, 2, `slice 2 asked of the origin by the leader and one follower, not both: ${ranges.join(' ')}`);
  await Promise.all(others.map((node) => node.service.cache.idle()));
  const lease = await others[0]!.service.store.store.head(others[0]!.service.store.keys.lease(others[0]!.service.cache.video(id as never), 2));
  t.is(lease?.metadata.state, 'done');
  t.true(others.some((node) => node.service.leases.node === lease?.metadata.node), 'held by a follower at the end');
});

/** A stand-in holder at its own address: what it answers `/peer/…` with, and the requests it got. */
async function fakeHolder(answer: (request: IncomingMessage, respond: (status: number, body?: Buffer) => void) => void) {
  const asked: IncomingMessage[] = [];
  const server = createServer((request, response) => {
    asked.push(request);
    answer(request, (status, body) => response.writeHead(status, { 'content-length': body?.length ?? 0 }).end(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, asked, close: () => new Promise((resolve) => server.close(resolve)).then(() => server.closeAllConnections()) };
}

/** B knows the video (slice 0 read); slice 5's lease is held, for `ttl`, by a holder at `peer` that never renews it. */
async function slice5HeldAt(b: Node, peer: string, ttl: number) {
  const id = h.video(fixture, { reportDuration: 30 });
  if ((await b.get(`/proxy/${id}`, { Range: 'bytes=0-1023' })).status !== 206) throw new Error('B did not learn the video');
  const ref = b.service.cache.video(id as never);
  const manifest = (await b.service.cache.manifest(ref)).manifest;
  const index = 5;
  await b.service.store.store.put(b.service.store.keys.lease(ref, index), Buffer.from(`fake ${randomBytes(4).toString('hex')}`), {
    contentType: 'text/plain',
    metadata: { node: 'fake-holder', state: 'held', ttl: String(ttl), peer },
  });
  const bytes = fixture.subarray(index * SLICE, (index + 1) * SLICE);
  const read = () => b.get(`/proxy/${id}`, { Range: `bytes=${index * SLICE}-${(index + 1) * SLICE - 1}` });
  return { id, manifest, index, bytes, read };
}

s3Test('a holder whose bytes fail their digests: the follower serves none of them, counts it, and reads the slice from the origin', async (t) => {
  let slice: { manifest: Manifest; bytes: Buffer } | undefined;
  const holder = await fakeHolder(async (_request, respond) => {
    const stored = await storedSlice(slice!.bytes, slice!.manifest.etag);
    stored[100_000]! ^= 0xff;
    respond(200, stored);
  });
  const [b] = await peerNodes(1);
  t.teardown(async () => {
    await b!.close();
    await holder.close();
  });
  const held = await slice5HeldAt(b!, holder.url, 10_000);
  slice = held;
  const reply = await held.read();
  t.is(reply.status, 206);
  t.is(reply.sha256, sha256(held.bytes), 'exact bytes');
  t.is(holder.asked.length, 1);
  t.is(holder.asked[0]!.url, `/peer/slices/${held.id}/video/${held.index}?etag=${encodeURIComponent(held.manifest.etag)}`);
  t.is(holder.asked[0]!.headers.authorization, `Bearer ${TOKEN}`);
  t.is(await counted(b!, 'integrityFailures', 'peer'), 1);
  // The first 64 KiB chunk matched its digest and was served; the second did not: the origin from there.
  const resumedAt = held.index * SLICE + 64 * 1024;
  t.true(h.origin.statsFor(held.id).requests.some((request) => (request.range ?? request.queryRange ?? '').includes(`${resumedAt}-`)), `the origin supplied the slice from byte ${resumedAt}`);
});

s3Test('a holder that accepts and never answers: the follower stops asking it within a second and takes over the lease once it lapses', async (t) => {
  const holder = await fakeHolder(() => undefined);
  const [b] = await peerNodes(1);
  t.teardown(async () => {
    await b!.close();
    await holder.close();
  });
  const held = await slice5HeldAt(b!, holder.url, 2_000);
  const started = Date.now();
  const reply = await held.read();
  t.is(reply.sha256, sha256(held.bytes));
  t.true(holder.asked.length >= 1, 'the holder was asked');
  t.true((await counted(b!, 'peerReads', 'failed')) >= 1);
  t.true((await counted(b!, 'leases', 'taken-over')) >= 1, 'the lapsed lease was taken over');
  t.log(`answered in ${Date.now() - started} ms`);
});

s3Test('/peer/ answers only with PEER_TOKEN, whatever the spelling; without PEER_URL no /peer/ route exists', async (t) => {
  const [a] = await peerNodes(1, { ADMIN_TOKEN: 'another-token-for-the-admin-api' });
  const plain = await h.node();
  t.teardown(() => Promise.all([a!.close(), plain.close()]));
  const id = h.video(fixture, { reportDuration: 30 });
  const path = `/peer/slices/${id}/video/0?etag=x`;
  const ask = (node: Node, target: string, token?: string) => rawRequest(node.url, 'GET', target, { head: token ? [`Authorization: Bearer ${token}`] : [] });
  t.is((await ask(a!, path)).status, 401);
  t.is((await ask(a!, path, 'wrong-token-0123456789')).status, 403);
  t.is((await ask(a!, path, 'another-token-for-the-admin-api')).status, 403, 'the admin token does not open /peer/');
  t.is((await ask(a!, path, TOKEN)).status, 404, 'nothing of that video here');
  t.is((await ask(a!, `/peer/slices/${id}/nope/0?etag=x`, TOKEN)).status, 400, 'unknown format');
  t.is((await ask(a!, `/peer/slices/${id}/video/x?etag=x`, TOKEN)).status, 400, 'bad index');
  for (const target of [`/PEER/slices/${id}/video/0?etag=x`, `//peer/slices/${id}/video/0`, `/%70eer/slices/${id}/video/0`, `/peer%2Fslices/${id}/video/0`, `/proxy/../peer/slices/${id}/video/0`, `/peer/./slices/${id}/video/0`]) {
    const reply = await ask(a!, target);
    t.true([400, 401, 404].includes(reply.status), `${target}: ${reply.status}`);
  }
  t.is((await ask(plain, path, TOKEN)).status, 404, 'no peer route without PEER_URL');
});
