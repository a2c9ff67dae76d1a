import { createHash, randomBytes } from 'node:crypto';
import { setImmediate } from 'node:timers/promises';
import test from 'ava';
import { fixture, fixtureSha, sha256, startHarness, type Harness } from '../helpers/harness.js';

// A file of its own: it counts the origin's connections, which every test sharing an origin would add to.
let h: Harness;
test.before(async () => {
  h = await startHarness();
});
test.after.always(() => h?.close());

test.serial('origin connections are reused (keep-alive) and bounded by ORIGIN_MAX_SOCKETS', async (t) => {
  const bounded = await h.node({ ORIGIN_MAX_SOCKETS: '1' });
  const id = h.video();
  const reply = await bounded.get(`/proxy/${id}`);
  t.is(reply.sha256, fixtureSha);
  const slices = Math.ceil(fixture.length / (256 * 1024));
  t.is(h.origin.statsFor(id).mediaRequests, slices);
  t.is(h.origin.stats.mediaConnections, 1, `${slices} slice requests over one connection`);

  h.origin.resetStats();
  const free = await h.node();
  const other = h.video();
  t.is((await free.get(`/proxy/${other}`)).sha256, fixtureSha);
  t.true(h.origin.stats.mediaConnections! < slices, `connections are reused: ${h.origin.stats.mediaConnections} for ${slices} slices`);
});

test.serial('a body chunk is given back (its memory freed) as soon as the sink has taken it: what a sink keeps, it copies', async (t) => {
  const node = await h.node();
  const bytes = randomBytes(700 * 1024);
  const id = h.video(bytes);
  const hash = createHash('sha256');
  const handed: Buffer[] = [];
  const sink = {
    async push(chunk: Buffer) {
      hash.update(chunk);
      handed.push(chunk);
      // A sink that takes its time, as a pass-through reader does.
      await setImmediate();
      t.true(chunk.length > 0, 'still the sink’s while push is pending');
    },
  };
  await node.service.fetcher.fetch(node.service.cache.video(id as never), 0, bytes.length - 1, sink, new AbortController().signal);
  t.is(hash.digest('hex'), sha256(bytes));
  t.true(handed.length > 3, `${handed.length} chunks`);
  t.true(handed.every((chunk) => chunk.length === 0 && chunk.buffer.byteLength === 0), 'every chunk detached once its push settled');
  await node.close();
});
