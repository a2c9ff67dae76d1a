import { randomBytes } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import test from 'ava';
import { eventually, sha256, startHarness, type Harness, type Node } from '../helpers/harness.js';

// Released slice Buffers are pooled and reused by the next fill (src/cache/slice-budget.ts): the memory-hit
// fast path must hold a slice until its socket has written every view of it, or a client on a slow link
// receives another video's bytes. These tests leave views unwritten behind a paused reader, drop the video
// from memory (DELETE /admin/videos/:id: the LRU lets go outside a reclaim, so the Buffers go to the pool;
// a reclaim never pools them), let other videos' fills take the pooled Buffers, and then read on.

let h: Harness;
test.before(async () => {
  h = await startHarness();
});
test.after.always(() => h?.close());

const KiB = 1024;
const MiB = 1024 * KiB;
const TOKEN = 'slow-socket-reuse-admin-token-0123456789';
/** Small slices: many Buffers per video, and the socket's 64 KiB high-water mark (Node 22+) is one slice. */
const SETTINGS = { SLICE_BYTES: '64KiB', MEMORY_CACHE_BYTES: String(12 * MiB), ADMIN_TOKEN: TOKEN };
/** Well beyond what the kernel's loopback buffers take from a reader that reads nothing. */
const VIDEO_BYTES = 6 * MiB;

/** The server's side of each request, by request target (diagnostics_channel: no hook into the service). */
const serverSide = new Map<string, ServerResponse>();
const onRequest = (message: unknown) => {
  const { request, response } = message as { request: IncomingMessage; response: ServerResponse };
  serverSide.set(request.url ?? '', response);
};
test.before(() => subscribe('http.server.request.start', onRequest));
test.after.always(() => unsubscribe('http.server.request.start', onRequest));

interface Paused {
  /** Reads on, to the end of the response. */
  readAll(): Promise<{ status: number; body: Buffer }>;
}

/** GET `target` on a fresh socket that reads nothing until `readAll`: the kernel buffers fill and the server's writes stay pending. */
function pausedGet(node: Node, target: string, head: string[] = []): Paused {
  const { hostname, port } = new URL(node.url);
  const socket = connect(Number(port), hostname);
  socket.pause();
  socket.write([`GET ${target} HTTP/1.1`, `Host: ${hostname}:${port}`, 'Connection: close', ...head, '', ''].join('\r\n'));
  const chunks: Buffer[] = [];
  const closed = new Promise<void>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve());
  });
  return {
    async readAll() {
      socket.resume();
      await closed;
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(all.subarray(0, end).toString('latin1'))?.[1]);
      return { status, body: all.subarray(end + 4) };
    },
  };
}

/**
 * Until the server's socket holds bytes it could not hand to the kernel and has written nothing more for
 * a while: the kernel's buffers (which grow for a while) are full, and the views behind wait for the reader.
 */
async function stalled(target: string): Promise<void> {
  let last = -1;
  let still = 0;
  await eventually(() => {
    const socket = serverSide.get(target)?.socket;
    const written = socket && socket.writableLength > 0 ? socket.bytesWritten : -1;
    still = written >= 0 && written === last ? still + 1 : 0;
    last = written;
    return still >= 20;
  }, 60_000, `the response to ${target} stalled on the paused reader`);
}

/** Drops the video from memory and the store: the memory tier lets go of its slices' charges. */
async function deleteVideo(node: Node, id: string): Promise<void> {
  const response = await fetch(`${node.url}/admin/videos/${id}`, { method: 'DELETE', headers: { Authorization: `Bearer ${TOKEN}` } });
  if (response.status !== 200) throw new Error(`DELETE /admin/videos/${id}: ${response.status} ${await response.text()}`);
}

/** Other videos filled from the origin, each fill taking a pooled Buffer first; every body exact. */
async function churn(t: { is(actual: unknown, expected: unknown, message?: string): void }, node: Node): Promise<void> {
  for (let round = 0; round < 2; round++) {
    const bytes = randomBytes(2 * MiB);
    const reply = await node.get(`/proxy/${h.video(bytes)}`);
    t.is(reply.sha256, sha256(bytes), `churn video ${round} exact`);
  }
}

test.serial('memory-hit fast path: views a paused socket has not written keep their slices while the video is dropped and other fills reuse Buffers', async (t) => {
  const node = await h.node(SETTINGS);
  const bytes = randomBytes(VIDEO_BYTES);
  const id = h.video(bytes);

  const range = { start: 100 * KiB + 7, end: VIDEO_BYTES - 300 * KiB - 11 };
  const cases = [
    { name: 'whole', head: [], expected: bytes, status: 200 },
    { name: 'range', head: [`Range: bytes=${range.start}-${range.end}`], expected: bytes.subarray(range.start, range.end + 1), status: 206 },
  ];
  const path = `/proxy/${id}`;
  for (const { name, head, expected, status } of cases) {
    // The case before dropped the video: the first read fills memory again.
    t.is((await node.get(path)).sha256, sha256(bytes), `${name}: every slice in memory`);
    serverSide.delete(path);
    const reader = pausedGet(node, path, head);
    await stalled(path);
    t.is(serverSide.get(path)!.getHeader('x-cache-status'), undefined, `${name}: the fast path answers (koa sets headers one by one)`);
    await deleteVideo(node, id);
    await churn(t, node);
    const reply = await reader.readAll();
    t.is(reply.status, status);
    t.is(reply.body.length, expected.length);
    t.is(sha256(reply.body), sha256(expected), `${name}: the paused client got the video's own bytes`);
  }
  await node.close();
});
