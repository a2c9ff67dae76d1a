import test from 'ava';
import { eventually, fixtureSha, startHarness, type Harness, type Node } from '../helpers/harness.js';

let h: Harness;
test.before(async () => {
  h = await startHarness();
});
test.after.always(() => h?.close());

/** `name{labels}` → value, from the Prometheus text format (labels kept in the order prom-client writes them). */
async function scrape(node: Node): Promise<{ text: string; value: (series: string) => number | undefined }> {
  const reply = await node.get('/metrics');
  const text = reply.body.toString();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^(\S+) (\S+)$/.exec(line);
    if (match && !line.startsWith('#')) values.set(match[1]!, Number(match[2]));
  }
  return { text, value: (series) => values.get(series) };
}

test('after a MISS and a HIT, /metrics has the latency histograms with bounded labels and non-zero counts', async (t) => {
  const node = await h.node({ MEMORY_CACHE_BYTES: '32MiB' });
  const id = h.video();
  const miss = await node.get(`/proxy/${id}`);
  t.is(miss.headers['x-cache-status'], 'MISS');
  t.is(miss.sha256, fixtureSha);
  const hit = await node.get(`/proxy/${id}`);
  t.is(hit.headers['x-cache-status'], 'HIT');
  t.is(hit.sha256, fixtureSha);

  // Request durations are observed when the response closes, which may be just after the client has read it.
  let metrics = await scrape(node);
  await eventually(async () => {
    metrics = await scrape(node);
    return (metrics.value('tubecache_request_duration_seconds_count{route="proxy",status="HIT"}') ?? 0) >= 1;
  }, 20_000, 'the HIT request duration');

  for (const status of ['MISS', 'HIT']) {
    t.is(metrics.value(`tubecache_first_byte_seconds_count{status="${status}"}`), 1, `one ${status} time to first byte`);
    t.true(metrics.value(`tubecache_first_byte_seconds_sum{status="${status}"}`)! > 0);
    t.is(metrics.value(`tubecache_request_duration_seconds_count{route="proxy",status="${status}"}`), 1, `one ${status} request duration`);
    t.true(metrics.value(`tubecache_request_duration_seconds_sum{route="proxy",status="${status}"}`)! > 0);
    t.is(metrics.value(`tubecache_first_byte_seconds_bucket{le="+Inf",status="${status}"}`), 1);
  }
  // The MISS looked for the manifest in the store (a miss), went to the origin, then persisted the head.
  const store = h.store.kind;
  t.true(metrics.value(`tubecache_store_operation_duration_seconds_count{store="${store}",operation="get",outcome="miss"}`)! >= 1);
  await eventually(async () => {
    metrics = await scrape(node);
    return (metrics.value(`tubecache_store_operation_duration_seconds_count{store="${store}",operation="put-slice",outcome="ok"}`) ?? 0) >= 1;
  }, 20_000, 'a timed slice upload');
  t.true(metrics.value('tubecache_origin_first_byte_seconds_count')! >= 1);
  t.true(metrics.value('tubecache_origin_first_byte_seconds_sum')! > 0);
  // The scrapes themselves are timed under their own route class.
  t.true(metrics.value('tubecache_request_duration_seconds_count{route="metrics",status="none"}')! >= 1);
  t.is(metrics.value(`tubecache_store_available{store="${store}"}`), 1);
  t.is(metrics.value('tubecache_memory_cache_budget_bytes'), 32 * 2 ** 20);
  t.false(metrics.text.includes(id), 'no series carries the video id');
});

test('the store skip window shows as tubecache_store_available 0', async (t) => {
  // An endpoint nobody listens on: the first S3 request fails and opens the window.
  const node = await h.node({ S3_ENDPOINT: 'http://127.0.0.1:9', S3_CREATE_BUCKET: 'false' });
  t.is((await scrape(node)).value('tubecache_store_available{store="s3"}'), 1);
  const id = h.video();
  const reply = await node.get(`/proxy/${id}`);
  t.is(reply.sha256, fixtureSha, 'served from the origin while S3 is down');
  const metrics = await scrape(node);
  t.is(metrics.value('tubecache_store_available{store="s3"}'), 0);
  t.true(metrics.value('tubecache_store_operation_duration_seconds_count{store="s3",operation="get",outcome="error"}')! >= 1);
});
