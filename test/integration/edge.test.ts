/**
 * The nginx edge of deploy/nginx/tubecache.conf, run for real: Debian's nginx
 * with that file (only the cache path, the listen port and the two node
 * addresses substituted) in front of two tubecache nodes on one S3 bucket.
 */
import { connect, createServer, type Socket } from 'node:net';
import test from 'ava';
import { fetchRaw, fixture, fixtureSha, sha256, startHarness, type Harness, type Node } from '../helpers/harness.js';
import { nginxMissing, startEdge, type Edge } from '../helpers/nginx.js';

/** The conf's `slice 1m`: nginx fetches and caches 1 MiB pieces. */
const EDGE_SLICE = 2 ** 20;
/** The harness's SLICE_BYTES. */
const NODE_SLICE = 256 * 1024;
const SIZE = fixture.length;

const missing = nginxMissing();
if (missing) console.log(`edge.test.ts skipped: ${missing}`);
const edgeTest = missing ? test.serial.skip : test.serial;

/** A TCP pass-through between nginx and one node that counts the connections nginx opens. */
interface Gate {
  /** Where nginx reaches the node through this gate. */
  url: string;
  connections: number;
  /** Stops listening: nginx's connections to this address are refused from now on. */
  close(): Promise<void>;
}

let h: Harness;
let nodes: Node[] = [];
let gates: Gate[] = [];
let edge: Edge | undefined;

test.before(async () => {
  if (missing) return;
  h = await startHarness();
  // PERSIST=full: every slice reaches S3, so a node that never fetched a video
  // can serve whole 1 MiB edge slices of it without the origin.
  nodes = [await h.node({ PERSIST: 'full' }), await h.node({ PERSIST: 'full' })];
  gates = await Promise.all(nodes.map((node) => startGate(new URL(node.url))));
  edge = await startEdge(gates);
});
test.after.always(async () => {
  await edge?.close();
  await Promise.all(gates.map((gate) => gate.close()));
  await h?.close();
});

async function startGate(target: URL): Promise<Gate> {
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    return socket;
  };
  const server = createServer((socket) => {
    gate.connections++;
    const upstream = track(connect(Number(target.port), target.hostname));
    track(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
    socket.pipe(upstream).pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const gate: Gate = {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    connections: 0,
    async close() {
      const closed = new Promise((resolve) => server.close(resolve));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
  return gate;
}

/** Proxy responses a node has sent (every status), from its metrics. */
async function served(node: Node): Promise<number> {
  const { values } = await node.service.metrics.requests.get();
  return values.reduce((sum, { value }) => sum + value, 0);
}

const servedByAll = async () => (await Promise.all(nodes.map(served))).reduce((sum, n) => sum + n, 0);

/** Fetches `id` through the edge once; `reached` are the nodes nginx asked for its slices. */
async function firstThroughEdge(id: string) {
  const before = await Promise.all(nodes.map(served));
  const reply = await edge!.get(`/proxy/${id}`);
  const after = await Promise.all(nodes.map(served));
  const reached = nodes.filter((_, i) => after[i]! > before[i]!);
  const home = reached[0]!;
  return { reply, reached, home, other: nodes.find((node) => node !== home)! };
}

edgeTest('whole and ranged GETs through the edge are exact; the second request is an nginx HIT', async (t) => {
  const id = h.video(fixture, { reportDuration: 30 });
  const { reply: miss, reached } = await firstThroughEdge(id);
  t.is(miss.status, 200);
  t.true(miss.complete);
  t.is(miss.sha256, fixtureSha);
  t.is(miss.headers['content-length'], String(SIZE));
  t.is(miss.headers['x-cache-status'], 'MISS', "nginx's own cache status");
  t.is(miss.headers['x-tubecache-status'], 'MISS', "the node's tier, under its own name");
  t.is(h.origin.statsFor(id).mediaBytes, SIZE, 'edge slices line up with node slices: every byte fetched once');
  t.is(h.origin.statsFor(id).resolves, 1);
  t.is(reached.length, 1, "the hash sends every slice of a video to its one home node");

  const servedBefore = await servedByAll();
  const hit = await edge!.get(`/proxy/${id}`);
  t.is(hit.status, 200);
  t.is(hit.headers['x-cache-status'], 'HIT');
  t.is(hit.sha256, fixtureSha);
  t.is(hit.headers.etag, miss.headers.etag);

  const range = await edge!.get(`/proxy/${id}`, { Range: 'bytes=1000-200000' });
  t.is(range.status, 206);
  t.is(range.headers['x-cache-status'], 'HIT');
  t.is(range.headers['content-range'], `bytes 1000-200000/${SIZE}`);
  t.is(range.sha256, sha256(fixture.subarray(1000, 200001)));

  t.is(await servedByAll(), servedBefore, 'HITs never reach a node');
  t.is(h.origin.statsFor(id).mediaBytes, SIZE);
});

edgeTest('seeking through the edge: ranges across nginx and tubecache slice boundaries, cold and warm', async (t) => {
  const id = h.video(fixture, { reportDuration: 30 });
  const cases: [string, number, number][] = [
    // A player's first request after a seek into the middle: crosses the 1 MiB edge slice (also a node slice boundary).
    [`bytes=${EDGE_SLICE - 100}-${EDGE_SLICE + 100}`, EDGE_SLICE - 100, EDGE_SLICE + 100],
    // Inside one edge slice, across a node slice.
    [`bytes=${NODE_SLICE - 10}-${NODE_SLICE + 10}`, NODE_SLICE - 10, NODE_SLICE + 10],
    // Across node slices that are not edge boundaries, and both edge slices.
    [`bytes=${NODE_SLICE * 3 + 7}-${EDGE_SLICE + NODE_SLICE * 2 + 3}`, NODE_SLICE * 3 + 7, EDGE_SLICE + NODE_SLICE * 2 + 3],
    ['bytes=0-0', 0, 0],
    ['bytes=-1000', SIZE - 1000, SIZE - 1],
    [`bytes=${EDGE_SLICE + 5}-`, EDGE_SLICE + 5, SIZE - 1],
    [`bytes=0-${SIZE + 5000}`, 0, SIZE - 1],
  ];
  for (const [round, expectedStatus] of [['cold', 'MISS'], ['warm', 'HIT']] as const) {
    for (const [header, start, end] of cases) {
      const reply = await edge!.get(`/proxy/${id}`, { Range: header });
      const what = `${round} ${header}`;
      t.is(reply.status, 206, what);
      t.is(reply.headers['content-range'], `bytes ${start}-${end}/${SIZE}`, what);
      t.is(reply.headers['content-length'], String(end - start + 1), what);
      t.is(reply.sha256, sha256(fixture.subarray(start, end + 1)), what);
      if (round === 'warm' || header === cases[0]![0]) t.is(reply.headers['x-cache-status'], expectedStatus, what);
    }
  }
  t.is(h.origin.statsFor(id).mediaBytes, SIZE, 'out-of-order seeks still fetch every byte from the origin once');
  const beyond = await edge!.get(`/proxy/${id}`, { Range: `bytes=${SIZE}-` });
  t.is(beyond.status, 416);
});

edgeTest('HEAD through the edge: the size, ranges and ETag without a body', async (t) => {
  const id = h.video(fixture, { reportDuration: 30 });
  const head = await fetchRaw(`${edge!.url}/proxy/${id}`, { method: 'HEAD' });
  t.is(head.status, 200);
  t.is(head.body.length, 0);
  t.is(head.headers['content-length'], String(SIZE));
  t.is(head.headers['accept-ranges'], 'bytes');
  t.regex(String(head.headers.etag), /^"[\w-]+"$/);
  t.is(head.headers['content-type'], 'video/mp4');

  const ranged = await fetchRaw(`${edge!.url}/proxy/${id}`, { method: 'HEAD', headers: { Range: `bytes=${EDGE_SLICE}-` } });
  t.is(ranged.status, 206);
  t.is(ranged.headers['content-range'], `bytes ${EDGE_SLICE}-${SIZE - 1}/${SIZE}`);
  t.is(ranged.body.length, 0);

  // The HEAD warmed the edge: the GET that follows is a HIT for its first slice and exact throughout.
  const get = await edge!.get(`/proxy/${id}`);
  t.is(get.headers['x-cache-status'], 'HIT');
  t.is(get.headers.etag, head.headers.etag);
  t.is(get.sha256, fixtureSha);
});

edgeTest('a video first served through the edge by one node is served by the other from S3 with zero origin bytes', async (t) => {
  const id = h.video(fixture, { reportDuration: 30 });
  const { reply, reached, home, other } = await firstThroughEdge(id);
  t.is(reached.length, 1);
  t.is(reply.sha256, fixtureSha);
  await home.service.cache.idle();
  const before = h.origin.statsFor(id);

  const direct = await other.get(`/proxy/${id}`);
  t.is(direct.status, 200);
  t.is(direct.headers['x-cache-status'], h.store.hit);
  t.is(direct.sha256, fixtureSha);
  t.is(direct.headers.etag, reply.headers.etag, 'the ETag does not depend on the node');
  t.is(h.origin.statsFor(id).mediaBytes, before.mediaBytes, 'zero origin bytes');
  t.is(h.origin.statsFor(id).resolves, before.resolves, 'no yt-dlp run');
});

edgeTest('the edge keeps its connections to the nodes open between requests', async (t) => {
  const opened = () => gates.reduce((sum, gate) => sum + gate.connections, 0);
  const [connectionsBefore, servedBefore] = [opened(), await servedByAll()];
  for (let i = 0; i < 3; i++) t.is((await edge!.get(`/proxy/${h.video()}`)).sha256, fixtureSha);
  const requests = (await servedByAll()) - servedBefore;
  t.is(requests, 3 * Math.ceil(SIZE / EDGE_SLICE), 'one node request per edge slice');
  // Sequential requests: each node needs one connection at most, whatever came before.
  t.true(opened() - connectionsBefore <= nodes.length, `${opened() - connectionsBefore} connections for ${requests} requests`);
});

// Last: it stops a node.
edgeTest("when a video's home node is gone, the edge moves it to the other node, which serves it from S3", async (t) => {
  const id = h.video(fixture, { reportDuration: 30 });
  const { reached, home, other } = await firstThroughEdge(id);
  t.is(reached.length, 1);
  await home.service.cache.idle();
  await Promise.all([home.close(), gates[nodes.indexOf(home)]!.close()]);
  const [before, otherBefore] = [h.origin.statsFor(id), await served(other)];

  // A query string is a new edge cache key, so this request must reach a node.
  const moved = await edge!.get(`/proxy/${id}?after=failover`);
  t.is(moved.status, 200);
  t.is(moved.headers['x-cache-status'], 'MISS');
  t.is(moved.headers['x-tubecache-status'], h.store.hit);
  t.is(moved.sha256, fixtureSha);
  t.true((await served(other)) > otherBefore, 'the other node served it');
  t.is(h.origin.statsFor(id).mediaBytes, before.mediaBytes, 'zero origin bytes');
});
