import test from 'ava';
import { fixture, fixtureSha, sha256, startHarness, type Harness, type Node } from '../helpers/harness.js';
import { chooseTestS3 } from '../helpers/s3.js';

// Nodes sharing a bucket is what S3 is for; without an S3 server the same tests run on one shared DATA_DIR.
const s3Choice = await chooseTestS3();
const noS3 = s3Choice.available ? undefined : s3Choice.reason;

let h: Harness;
test.before(async () => {
  h = await startHarness({ store: noS3 ? 'disk' : 's3' });
});
test.after.always(() => h?.close());

const SLICE = 256 * 1024;
/** HEAD_SECONDS=10 of a 30 s fixture: the first third, in whole slices. */
const HEAD_SLICES = Math.ceil(fixture.length / 3 / SLICE);
const HEAD_END = HEAD_SLICES * SLICE - 1;

async function serveOnce(node: Node, id: string) {
  const reply = await node.get(`/proxy/${id}`);
  if (reply.sha256 !== fixtureSha) throw new Error('first node served wrong bytes');
  await node.service.cache.idle();
}

test.serial('a second node on the same bucket serves the head from S3 with zero origin bytes and no yt-dlp run', async (t) => {
  const a = await h.node();
  const b = await h.node();
  const id = h.video(fixture, { reportDuration: 30 });
  await serveOnce(a, id);
  const before = h.origin.statsFor(id);

  const head = await b.get(`/proxy/${id}`, { Range: `bytes=0-${HEAD_END}` });
  t.is(head.status, 206);
  t.is(head.headers['x-cache-status'], h.store.hit);
  t.is(head.sha256, sha256(fixture.subarray(0, HEAD_END + 1)));
  t.is(head.headers.etag, (await a.head(`/proxy/${id}`)).headers.etag, 'the ETag does not depend on the node');
  const after = h.origin.statsFor(id);
  t.is(after.mediaBytes, before.mediaBytes, 'zero origin bytes');
  t.is(after.resolves, before.resolves, 'no yt-dlp run');

  const whole = await b.get(`/proxy/${id}`);
  t.is(whole.sha256, fixtureSha);
  if (noS3) {
    // The disk store has no leases: past the head, node B goes to the origin for exactly the bytes it lacks.
    t.is(h.origin.statsFor(id).mediaBytes - after.mediaBytes, fixture.length - (HEAD_END + 1));
    t.is(h.origin.statsFor(id).resolves, before.resolves + 1);
  } else {
    // On S3, node B reads the slices node A shared under its leases (pruned after SHARED_TTL): still no origin byte.
    t.is(h.origin.statsFor(id).mediaBytes, after.mediaBytes);
    t.is(h.origin.statsFor(id).resolves, before.resolves);
  }
});

test.serial('after a restart the head comes from S3; PERSIST=full keeps every slice', async (t) => {
  const id = h.video(fixture, { reportDuration: 30 });
  const first = await h.node({ PERSIST: 'full' });
  await serveOnce(first, id);
  await first.close();
  const before = h.origin.statsFor(id).mediaBytes;

  const restarted = await h.node({ PERSIST: 'full' });
  const reply = await restarted.get(`/proxy/${id}`);
  t.is(reply.headers['x-cache-status'], h.store.hit);
  t.is(reply.sha256, fixtureSha);
  t.is(h.origin.statsFor(id).mediaBytes, before, 'every byte from S3');
  const again = await restarted.get(`/proxy/${id}`);
  t.is(again.headers['x-cache-status'], 'HIT', 'S3 reads land in memory');
  t.is(again.sha256, fixtureSha);
});

test.serial('a slice whose S3 object disagrees with the manifest is a miss and is replaced', async (t) => {
  const id = h.video(fixture, { reportDuration: 30 });
  const a = await h.node();
  await serveOnce(a, id);
  const s3 = a.service.store;
  const manifest = (await s3.getManifest(a.service.cache.video(id as never), SLICE))!;
  await s3.putText(s3.keys.slice(manifest, 1), 'truncated', 'application/octet-stream');

  const b = await h.node();
  const before = h.origin.statsFor(id).mediaBytes;
  const reply = await b.get(`/proxy/${id}`, { Range: `bytes=0-${HEAD_END}` });
  t.is(reply.sha256, sha256(fixture.subarray(0, HEAD_END + 1)));
  t.is(h.origin.statsFor(id).mediaBytes - before, SLICE, 'only the bad slice came from the origin');
  await b.service.cache.idle();

  const c = await h.node();
  const fixed = await c.get(`/proxy/${id}`, { Range: `bytes=${SLICE}-${2 * SLICE - 1}` });
  t.is(fixed.headers['x-cache-status'], h.store.hit);
  t.is(fixed.sha256, sha256(fixture.subarray(SLICE, 2 * SLICE)));
  t.is(h.origin.statsFor(id).mediaBytes - before, SLICE, 'the replaced slice is served from S3');
});

(noS3 ? test.serial.skip : test.serial)('S3 stopped mid-test: cached and new videos are still 200 with exact bytes', async (t) => {
  const s3 = h.store.s3!;
  const node = await h.node();
  const persisted = h.video(fixture, { reportDuration: 30 });
  await serveOnce(node, persisted);
  const fresh = h.video();
  await s3.pause();
  try {
    const other = await h.node().catch((error: unknown) => error as Error);
    t.false(other instanceof Error, 'a node starts while S3 is down');
    const target = other instanceof Error ? node : other;
    for (const id of [persisted, fresh]) {
      const reply = await target.get(`/proxy/${id}`);
      t.is(reply.status, 200, id);
      t.is(reply.sha256, fixtureSha, id);
    }
    const ready = await target.get('/readyz');
    t.is(ready.status, 503);
    t.false(JSON.parse(ready.body.toString()).checks.store.ok);
    const metrics = await target.get('/metrics');
    t.regex(metrics.body.toString(), /tubecache_store_operations_total\{store="s3",operation="[\w-]+",outcome="error"\} [1-9]/);
  } finally {
    await s3.resume();
  }
  t.is((await node.get('/readyz')).status, 200, 'ready again once S3 is back');
});

(noS3 ? test.skip : test)('a bucket that does not exist, with S3_CREATE_BUCKET=false, stops start-up naming S3_BUCKET', async (t) => {
  const error = await t.throwsAsync(h.node({ S3_BUCKET: `missing-${Date.now()}`, S3_CREATE_BUCKET: 'false' }));
  t.is((error as { variable?: string }).variable, 'S3_BUCKET');
  t.regex(error!.message, /does not exist/);
});

test.serial('a store hit asks for the first slice beside the manifest, not after it: where the Range starts, once; a HEAD asks for none', async (t) => {
  const a = await h.node();
  const id = h.video(fixture, { reportDuration: 30 });
  await serveOnce(a, id);
  /** A fresh node whose store GETs are recorded: the key, and whether the manifest's GET had answered when it began. */
  const watched = async () => {
    const node = await h.node();
    const store = node.service.store.store;
    const get = store.get.bind(store);
    const gets: { key: string; manifestAnswered: boolean }[] = [];
    let manifestAnswered = false;
    store.get = async (key, range, signal) => {
      gets.push({ key: key.slice(key.indexOf(id) + id.length + 1), manifestAnswered });
      const object = await get(key, range, signal);
      if (key.endsWith('manifest.json')) manifestAnswered = true;
      return object;
    };
    return { node, gets };
  };

  const first = await watched();
  const whole = await first.node.get(`/proxy/${id}`, { Range: `bytes=0-${HEAD_END}` });
  t.is(whole.headers['x-cache-status'], h.store.hit);
  t.is(whole.sha256, sha256(fixture.subarray(0, HEAD_END + 1)));
  const byKey = (x: { key: string }, y: { key: string }) => x.key.localeCompare(y.key);
  t.deepEqual(first.gets.slice(0, 2).sort(byKey), [
    { key: 'video/manifest.json', manifestAnswered: false },
    { key: 'video/slices/0', manifestAnswered: false },
  ]);
  t.is(first.gets.filter((get) => get.key === 'video/slices/0').length, 1, 'slice 0 asked once: the read took the early GET');

  // A range that starts in slice 2: slice 2 is asked early.
  const second = await watched();
  const from = 2 * SLICE + 100;
  const ranged = await second.node.get(`/proxy/${id}`, { Range: `bytes=${from}-${HEAD_END}` });
  t.is(ranged.sha256, sha256(fixture.subarray(from, HEAD_END + 1)));
  t.deepEqual(second.gets.slice(0, 2).sort(byKey), [
    { key: 'video/manifest.json', manifestAnswered: false },
    { key: 'video/slices/2', manifestAnswered: false },
  ]);
  t.is(second.gets.filter((get) => get.key === 'video/slices/2').length, 1);

  // Beyond the head (the manifest lists no slices/ there): the early GET is dropped, and the read goes where the manifest says.
  const third = await watched();
  const late = (HEAD_SLICES + 1) * SLICE;
  const beyond = await third.node.get(`/proxy/${id}`, { Range: `bytes=${late}-${late + 999}` });
  t.is(beyond.sha256, sha256(fixture.subarray(late, late + 1000)));
  t.is(third.gets.filter((get) => get.key === `video/slices/${HEAD_SLICES + 1}`).length, 1, 'only the early GET asked slices/ for it');

  // A HEAD reads no body: the manifest alone.
  const fourth = await watched();
  t.is((await fourth.node.head(`/proxy/${id}`)).status, 200);
  t.deepEqual(fourth.gets, [{ key: 'video/manifest.json', manifestAnswered: false }]);
  await Promise.all([a, first.node, second.node, third.node, fourth.node].map((node) => node.close()));
});
