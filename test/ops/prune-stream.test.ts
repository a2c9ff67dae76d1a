import { randomBytes } from 'node:crypto';
import { request, type IncomingHttpHeaders } from 'node:http';
import test from 'ava';
import type { PruneSummary } from '../../src/ops/prune.js';
import { sha256, startHarness, type Harness, type Node } from '../helpers/harness.js';
import { jsonLine, runCli } from './run-cli.js';

let h: Harness;
test.before(async () => {
  h = await startHarness();
});
test.after.always(() => h?.close());

/**
 * A GET whose reader stops after the first chunk until `resume()`: a player
 * with a full buffer. The server can then only run ahead by what the sockets
 * hold, so most of a large video is still unread when the test acts.
 */
function pausedGet(url: string) {
  let resume!: () => void;
  let first!: () => void;
  const firstChunk = new Promise<void>((resolve) => (first = resolve));
  const done = new Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        if (chunks.length === 1) {
          res.pause();
          first();
        }
      });
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      resume = () => res.resume();
    });
    req.on('error', reject);
    req.end();
  });
  return { firstChunk, done, resume: () => resume() };
}

const served = async (node: Node, tier: string) => (await node.service.metrics.bytesServed.get()).values.find((v) => v.labels.tier === tier)?.value ?? 0;

test('a video pruned while it streams keeps playing: the reader falls back to the origin and every byte is right', async (t) => {
  const bucket = await h.store.fresh();
  const env = { ...h.env, ...bucket };
  // Larger than what loopback sockets buffer, so the stream is mid-way when prune runs.
  const video = randomBytes(24 * 2 ** 20);
  const id = h.video(video);

  const writer = await h.node({ PERSIST: 'full' }, bucket);
  const first = await writer.get(`/proxy/${id}`);
  t.is(first.sha256, sha256(video));
  await writer.service.cache.idle();
  await writer.close();

  const reader = await h.node({ PERSIST: 'full' }, bucket);
  const stream = pausedGet(`${reader.url}/proxy/${id}`);
  await stream.firstChunk;
  // From here on the origin is slow: the rest of the stream is a throttled one.
  h.origin.setThrottle(id, 16 * 2 ** 20);
  const originBefore = h.origin.statsFor(id).mediaBytes;

  const pruned = await runCli(['prune', '--ttl', '0s', '--json'], env);
  t.is(pruned.exitCode, 0, pruned.stderr);
  const summary = jsonLine<PruneSummary>(pruned.stdout);
  t.is(summary.deleted.videos, 1);
  t.is(summary.kept.objects, 0, 'the manifest and every slice are gone from S3');
  const fromS3 = await served(reader, h.store.kind);
  t.true(fromS3 < video.length, `the stream was mid-way when prune finished (${fromS3} of ${video.length} bytes read from S3)`);

  t.log(`read from S3 before the prune: ${fromS3} of ${video.length} bytes`);
  stream.resume();
  const reply = await stream.done;
  t.is(reply.status, 200);
  t.is(reply.headers['x-cache-status'], h.store.hit, 'the response started as a store hit');
  t.is(reply.body.length, video.length);
  t.is(sha256(reply.body), sha256(video), 'every byte right');
  const fromOrigin = h.origin.statsFor(id).mediaBytes - originBefore;
  t.log(`read from the origin after the prune: ${fromOrigin} bytes`);
  t.true(fromOrigin > 0, 'the slices prune took were read from the origin');
});
