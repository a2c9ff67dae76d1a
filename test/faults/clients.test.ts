import test from 'ava';
import type { VideoId } from '../../src/origin/video-id.js';
import { eventually, fixture, fixtureSha, sha256, startHarness, type Harness } from '../helpers/harness.js';
import { baseline, checkPersisted, serverConnections, streamGet } from './support.js';

// Clients that misbehave: a thousand that leave at random points, fifty that read slowly.
// Serial: the fd and socket counts are the whole process's.

let h: Harness;
test.before(async () => {
  h = await startHarness();
});
test.after.always(() => h?.close());

const port = (url: string) => Number(new URL(url).port);
/** A prefix of the fixture of `bytes` bytes: what a client that left may have received. */
const prefixSha = (bytes: number) => sha256(fixture.subarray(0, bytes));

test.serial('1,000 clients that leave (before the headers or mid-body): no connection, flight or fd is left, and the cache still serves exact bytes', async (t) => {
  const before = baseline();
  const node = await h.node();
  const videos = Array.from({ length: 10 }, () => h.video(fixture, { reportDuration: 30 }));
  const TOTAL = 1000;
  const PARALLEL = 50;
  let next = 0;
  let wrong = 0;
  const worker = async () => {
    while (next < TOTAL) {
      const n = next++;
      // Cold and warm videos alike; a tenth leave before the headers.
      const id = videos[n % videos.length]!;
      const abortAfterBytes = n % 10 === 0 ? 0 : 1 + Math.floor(Math.random() * (fixture.length - 1));
      const reply = await streamGet(`${node.url}/proxy/${id}`, { abortAfterBytes });
      // Whatever arrived is the start of the video, never other bytes.
      if (reply.bytes > 0 && reply.sha256 !== prefixSha(reply.bytes)) wrong++;
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  t.is(wrong, 0, 'every partial body is a correct prefix');

  await eventually(() => serverConnections(port(node.url)) === 0, 15_000, 'the service to close every client connection');
  await eventually(() => node.service.cache.inFlight === 0, 30_000, 'no slice fetch left running');
  for (const id of videos) {
    const reply = await streamGet(`${node.url}/proxy/${id}`);
    t.true(reply.complete && reply.sha256 === fixtureSha, id);
  }
  await node.service.cache.idle();
  for (const id of videos) await checkPersisted(t, h.env, node.service.cache.video(id as VideoId), fixture);
  await node.close();
  await before.restored();
});

test.serial('50 slow readers (~100 KB/s each) get exact bodies; their connections and fds are released', async (t) => {
  const before = baseline();
  const node = await h.node();
  const [shared, other] = [h.video(fixture, { reportDuration: 30 }), h.video(fixture, { reportDuration: 30 })];
  const started = performance.now();
  const replies = await Promise.all(Array.from({ length: 50 }, (_, n) => streamGet(`${node.url}/proxy/${n % 5 === 0 ? other : shared}`, { bytesPerSecond: 100_000 })));
  for (const reply of replies) {
    t.is(reply.status, 200);
    t.true(reply.complete);
    t.is(reply.sha256, fixtureSha);
  }
  t.log(`50 slow readers done in ${Math.round(performance.now() - started)} ms`);
  t.is(h.origin.statsFor(shared).mediaBytes, fixture.length, 'slow readers of one video share one origin fetch');
  await eventually(() => serverConnections(port(node.url)) === 0, 15_000, 'the service to close every client connection');
  await node.service.cache.idle();
  await checkPersisted(t, h.env, node.service.cache.video(shared as VideoId), fixture);
  await node.close();
  await before.restored();
});
