import test from 'ava';
import { fixture, fixtureSha, startHarness, type Harness } from '../helpers/harness.js';

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
