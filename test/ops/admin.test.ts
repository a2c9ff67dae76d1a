import test from 'ava';
import type { VideoDetail, VideoInfo } from '../../src/ops/inspect.js';
import type { PruneSummary } from '../../src/ops/prune.js';
import { eventually, fixture, fixtureSha, freePort, startHarness, type Harness, type Node } from '../helpers/harness.js';

const TOKEN = 'admin-token-for-tests-0123456789';
const SLICE = 256 * 1024;
const SLICES = Math.ceil(fixture.length / SLICE);

let h: Harness;
test.before(async () => {
  h = await startHarness();
});
test.after.always(() => h?.close());

/** The admin API with the token (or `token`, or none with null); JSON in, JSON out. */
async function admin(base: string, path: string, options: { method?: string; body?: unknown; token?: string | null } = {}) {
  const token = options.token === undefined ? TOKEN : options.token;
  const response = await fetch(base + path, {
    method: options.method ?? 'GET',
    headers: { ...(token === null ? {} : { Authorization: `Bearer ${token}` }), ...(options.body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
}

/** A node on a bucket of its own, so listings hold only this test's videos. */
async function isolatedNode(env: Record<string, string> = {}): Promise<Node> {
  return h.node({ ADMIN_TOKEN: TOKEN, ...env }, await h.store.fresh());
}

async function serve(node: Node, id: string): Promise<void> {
  const reply = await node.get(`/proxy/${id}`);
  if (reply.sha256 !== fixtureSha) throw new Error(`served wrong bytes for ${id}`);
  await node.service.cache.idle();
}

test('without ADMIN_TOKEN the admin routes do not exist (404), with or without a token', async (t) => {
  const node = await h.node();
  for (const path of ['/admin/stats', '/admin/videos', `/admin/videos/${h.video()}`]) {
    t.is((await admin(node.url, path)).status, 404, path);
    t.is((await admin(node.url, path, { token: null })).status, 404, path);
  }
});

test('admin auth: no token 401, a wrong token 403 (of any length), the right one 200', async (t) => {
  const node = await h.node({ ADMIN_TOKEN: TOKEN });
  for (const path of ['/admin/stats', '/admin/videos', '/admin/prune']) {
    const method = path === '/admin/prune' ? 'POST' : 'GET';
    const missing = await admin(node.url, path, { method, token: null });
    t.is(missing.status, 401, path);
    t.is(missing.body.error.code, 'UNAUTHORIZED');
    t.regex(missing.headers.get('www-authenticate') ?? '', /^Bearer/);
    for (const wrong of ['nope', `${TOKEN}x`, TOKEN.replace(/.$/, '?')]) {
      const refused = await admin(node.url, path, { method, token: wrong });
      t.is(refused.status, 403, `${path} with ${wrong}`);
      t.is(refused.body.error.code, 'FORBIDDEN');
    }
  }
  const basic = await fetch(`${node.url}/admin/stats`, { headers: { Authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` } });
  t.is(basic.status, 401, 'only Bearer is accepted');
  t.is((await admin(node.url, '/admin/stats')).status, 200);
  t.is((await admin(node.url, '/admin/prune', { method: 'POST', body: { dryRun: true } })).status, 200);
});

test('with ADMIN_PORT the admin API has its own port and is absent from the main one', async (t) => {
  const port = await freePort();
  const node = await h.node({ ADMIN_TOKEN: TOKEN, ADMIN_PORT: String(port) });
  const adminUrl = `http://127.0.0.1:${port}`;
  t.is((await admin(adminUrl, '/admin/stats')).status, 200);
  t.is((await admin(adminUrl, '/admin/stats', { token: 'wrong' })).status, 403);
  t.is((await admin(adminUrl, '/proxy/abcdefghijk')).status, 404, 'the admin port serves no video');
  t.is((await admin(node.url, '/admin/stats')).status, 404);
});

test('GET /admin/videos pages with a cursor; GET /admin/videos/:id shows S3 and memory; DELETE removes both', async (t) => {
  const node = await isolatedNode();
  const ids = [h.video(fixture, { reportDuration: 30 }), h.video(fixture, { reportDuration: 30 }), h.video(fixture, { reportDuration: 30 })];
  for (const id of ids) await serve(node, id);

  const seen: VideoInfo[] = [];
  let cursor: string | null = '';
  let pages = 0;
  while (cursor !== null) {
    const page: { status: number; body: { videos: VideoInfo[]; nextCursor: string | null } } = await admin(node.url, `/admin/videos?limit=2&cursor=${encodeURIComponent(cursor)}`);
    t.is(page.status, 200);
    t.true(page.body.videos.length <= 2);
    seen.push(...page.body.videos);
    cursor = page.body.nextCursor;
    pages++;
  }
  t.is(pages, 2);
  t.deepEqual(seen.map((video) => video.id), [...ids].sort(), 'every video once, in key order');
  for (const video of seen) {
    t.is(video.manifest, 'ok');
    t.is(video.size, fixture.length);
    t.is(video.totalSlices, SLICES);
    t.true(video.persistedSlices > 0 && video.persistedSlices < SLICES, 'the head is in S3, not the whole video');
    t.true(video.headSeconds! >= 10, 'HEAD_SECONDS=10 plays from S3');
  }

  const [id] = ids as [string];
  const detail = await admin(node.url, `/admin/videos/${id}`);
  t.is(detail.status, 200);
  const stored = detail.body.s3 as VideoDetail[];
  t.is(stored.length, 1);
  t.is(stored[0]!.manifestBody!.etag, String((await node.head(`/proxy/${id}`)).headers.etag));
  t.deepEqual(stored[0]!.slices.map((slice) => slice.index), stored[0]!.manifestBody!.persisted);
  t.deepEqual(detail.body.memory.slices, Array.from({ length: SLICES }, (_, i) => i), 'the node served it all: every slice is in its memory');

  t.is((await admin(node.url, '/admin/videos/not-an-id')).body.error.code, 'INVALID_VIDEO_ID');
  t.is((await admin(node.url, '/admin/videos?limit=0')).status, 400);
  t.is((await admin(node.url, '/admin/videos?cursor=garbage')).status, 400);

  const removed = await admin(node.url, `/admin/videos/${id}`, { method: 'DELETE' });
  t.is(removed.status, 200);
  t.is(removed.body.s3.videos, 1);
  t.true(removed.body.memory.entries > SLICES);
  t.is((await admin(node.url, `/admin/videos/${id}`)).status, 404);
  t.is((await admin(node.url, `/admin/videos/${id}`, { method: 'DELETE' })).status, 404);
  const again = await node.get(`/proxy/${id}`);
  t.is(again.headers['x-cache-status'], 'MISS', 'gone from memory and S3');
  t.is(again.sha256, fixtureSha);
});

test('POST /admin/prune takes the CLI options as JSON and returns the summary', async (t) => {
  const node = await isolatedNode();
  const id = h.video();
  await serve(node, id);
  await eventually(async () => (await admin(node.url, `/admin/videos/${id}`)).body?.s3?.[0]?.lastAccessFrom === 'access', 10_000, 'the access object');

  const dry = await admin(node.url, '/admin/prune', { method: 'POST', body: { ttl: '0s', dryRun: true } });
  t.is(dry.status, 200);
  t.deepEqual((dry.body as PruneSummary).videos.map((video) => [video.id, video.reason]), [[id, 'ttl']]);
  t.is((await admin(node.url, `/admin/videos/${id}`)).body.s3.length, 1, 'a dry run deletes nothing');

  const kept = await admin(node.url, '/admin/prune', { method: 'POST', body: { ttl: '1h', maxBytes: '1GiB', concurrency: 2 } });
  t.is(kept.body.deleted.videos, 0);
  t.is(kept.body.kept.videos, 1);

  const real = await admin(node.url, '/admin/prune', { method: 'POST', body: { ttl: '0s' } });
  t.is(real.body.deleted.videos, 1);
  t.deepEqual(real.body.failures, []);
  t.deepEqual((await admin(node.url, `/admin/videos/${id}`)).body.s3, [], 'gone from S3');

  for (const body of [{ ttl: 'soon' }, { maxBytes: 'lots' }, { dryRun: 'yes' }, { concurrency: 0 }, { force: true }, [1]]) {
    const refused = await admin(node.url, '/admin/prune', { method: 'POST', body });
    t.is(refused.status, 400, JSON.stringify(body));
    t.is(refused.body.error.code, 'BAD_REQUEST');
  }
});

/** One sample from Prometheus text: `name{labels} value`. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

test('metrics: a HIT adds its bytes and slices to the memory tier; /admin/stats reads the same counters', async (t) => {
  const node = await h.node({ ADMIN_TOKEN: TOKEN });
  const id = h.video();
  const scrape = async () => (await node.get('/metrics')).body.toString();
  const miss = await node.get(`/proxy/${id}`);
  t.is(miss.headers['x-cache-status'], 'MISS');
  const before = await scrape();

  const hit = await node.get(`/proxy/${id}`);
  t.is(hit.headers['x-cache-status'], 'HIT');
  t.is(hit.sha256, fixtureSha);
  const after = await scrape();
  const delta = (series: string) => sample(after, series) - sample(before, series);
  t.is(delta('tubecache_served_bytes_total{tier="memory",format="video"}'), fixture.length);
  t.is(delta('tubecache_slice_reads_total{tier="memory"}'), SLICES);
  t.is(delta('tubecache_requests_total{status="HIT",format="video"}'), 1);
  t.is(delta('tubecache_served_bytes_total{tier="origin",format="video"}'), 0);
  t.is(delta('tubecache_origin_bytes_total'), 0);
  t.true(sample(after, 'tubecache_memory_cache_bytes') >= fixture.length);
  t.false(after.includes(id), 'no per-video labels');

  const stats = await admin(node.url, '/admin/stats');
  t.is(stats.status, 200);
  t.is(stats.body.tiers.memory.bytes, sample(after, 'tubecache_served_bytes_total{tier="memory",format="video"}'));
  t.is(stats.body.tiers.origin.bytes, fixture.length);
  t.is(stats.body.tiers.memory.byteRatio, 0.5, 'one MISS and one HIT of the same video');
  t.is(stats.body.requests.hitRatio, 0.5);
  t.is(stats.body.memory.bytes, node.service.memory.bytes);
  t.is(stats.body.inFlight.sliceFetches, 0);
  t.is(typeof stats.body.uploads.queued, 'number');
});

test('PRUNE_INTERVAL prunes inside the service on a schedule, and close() stops it', async (t) => {
  const bucket = await h.store.fresh();
  const writer = await h.node({}, bucket);
  const id = h.video();
  await serve(writer, id);
  const listed = async () => {
    let count = 0;
    for await (const page of writer.service.store.list(`videos/${id}/`)) count += page.length;
    return count;
  };
  t.true((await listed()) > 0);

  const pruner = await h.node({ PRUNE_INTERVAL: '100ms', PRUNE_TTL: '0s' }, bucket);
  const runs = async () => (await pruner.service.metrics.pruneRuns.get()).values.reduce((n, { value }) => n + value, 0);
  await eventually(async () => (await runs()) >= 1 && (await listed()) === 0, 10_000, 'the scheduled prune');
  t.pass('the scheduled prune deleted the video');
  await pruner.close();
  const stopped = await runs();
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.is(await runs(), stopped, 'no prune after close');
});
