import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import test from 'ava';
import { serverConnections } from '../faults/support.js';
import { eventually, sha256, startHarness, type Harness, type Node } from '../helpers/harness.js';
import { chooseTestS3 } from '../helpers/s3.js';

// The store behind the budget is the real S3 server when there is one (its reads stream through too), else the disk store.
const s3Choice = await chooseTestS3();

let h: Harness;
test.before(async () => {
  h = await startHarness({ store: s3Choice.available ? 's3' : 'disk' });
});
test.after.always(() => h?.close());

const KiB = 1024;
const SLICE = 256 * KiB;
/** Four 256 KiB slices (the harness's SLICE_BYTES); three may be kept, the rest is for chunks streamed through. */
const BUDGET = 1024 * KiB;

/** Streams through that stop (done, or their reader gone) close their origin requests: none is left once idle keep-alives time out (5 s). */
const originClosed = () => eventually(() => serverConnections(h.origin.port) === 0, 30_000, 'every origin connection closed');

/** `name` → value of the unlabelled series in a /metrics scrape. */
async function scrape(node: Node): Promise<Map<string, number>> {
  const reply = await node.get('/metrics');
  const values = new Map<string, number>();
  for (const match of reply.body.toString().matchAll(/^([a-z_]+) (\S+)$/gm)) values.set(match[1]!, Number(match[2]));
  return values;
}

/** A GET read like a player on a slow link: `bytesPerSecond`, by pausing the socket; `leaveAfter` bytes, then it hangs up. */
function slowGet(url: string, headers: Record<string, string>, bytesPerSecond: number, leaveAfter = Infinity): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request(url, { headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let received = 0;
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        received += chunk.length;
        if (received >= leaveAfter) {
          res.destroy();
          return;
        }
        const ahead = received / bytesPerSecond - (performance.now() - started) / 1000;
        if (ahead > 0) {
          res.pause();
          setTimeout(() => res.resume(), ahead * 1000);
        }
      });
      res.on('close', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

test.serial('live slice bytes stay within MEMORY_CACHE_BYTES at every scrape of a load five times its size; bodies are exact; each video is resolved once', async (t) => {
  const node = await h.node({ MEMORY_CACHE_BYTES: String(BUDGET), PERSIST: 'full' });
  // 5 videos of 1.1 MB: 22 slices, five and a half times the budget.
  const videos = Array.from({ length: 5 }, () => randomBytes(1100 * KiB));
  const ids = videos.map((bytes) => h.video(bytes));
  const samples: number[] = [];
  let loading = true;
  const sampler = (async () => {
    while (loading) {
      const metrics = await scrape(node);
      samples.push(metrics.get('tubecache_slice_bytes_live')!);
      t.is(metrics.get('tubecache_memory_cache_budget_bytes'), BUDGET);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();

  // Two rounds: the first fills from the origin, the second finds some slices in memory, the rest in the store.
  for (const round of [1, 2]) {
    const clients = Array.from({ length: 20 }, async (_, client) => {
      const video = client % videos.length;
      // Every other client starts mid-slice.
      const start = client % 2 === 0 ? 0 : 100 * KiB + client * 1000;
      const reply = await slowGet(`${node.url}/proxy/${ids[video]}`, { Range: `bytes=${start}-` }, 2e6);
      return reply.status === 206 && sha256(reply.body) === sha256(videos[video]!.subarray(start));
    });
    const exact = await Promise.all(clients);
    t.is(exact.filter(Boolean).length, exact.length, `round ${round}: every body sha256-exact`);
  }
  await node.service.cache.idle();
  loading = false;
  await sampler;

  t.true(samples.length >= 10, `${samples.length} scrapes`);
  t.true(samples.every((live) => live <= BUDGET), `every sample ≤ ${BUDGET}: max ${Math.max(...samples)}`);
  t.true(Math.max(...samples) > BUDGET / 2, 'the load did fill the budget');
  const metrics = await scrape(node);
  t.true(metrics.get('tubecache_slices_passed_through_total')! > 0, 'fills with no room streamed through');
  t.true(metrics.get('tubecache_memory_cache_evictions_total')! > 0);
  // Nothing held once the load is over: what is live is what the memory tier keeps and released Buffers pooled for reuse.
  t.is(metrics.get('tubecache_slice_bytes_live'), metrics.get('tubecache_memory_cache_bytes')! + metrics.get('tubecache_slice_bytes_pooled')!);
  for (const id of ids) t.is(h.origin.statsFor(id).resolves, 1, 'slice churn did not evict the manifest or the resolution');
  await originClosed();
  await node.close();
});

test.serial('clients that hang up mid-body give every byte back: fills aborted, chunks and held slices released', async (t) => {
  const node = await h.node({ MEMORY_CACHE_BYTES: String(BUDGET) });
  const bytes = randomBytes(2000 * KiB);
  const id = h.video(bytes);
  // Slow enough that fills are still running when the clients leave.
  h.origin.setThrottle(id, 1e6);
  const leavers = Array.from({ length: 12 }, (_, client) => slowGet(`${node.url}/proxy/${id}`, { Range: `bytes=${client * 150 * KiB}-` }, 4e6, 100 * KiB));
  for (const reply of await Promise.all(leavers)) t.true(reply.body.length < bytes.length);
  await node.service.cache.idle();
  await eventually(async () => {
    const metrics = await scrape(node);
    return metrics.get('tubecache_slice_bytes_live') === metrics.get('tubecache_memory_cache_bytes')! + metrics.get('tubecache_slice_bytes_pooled')!;
  }, 20_000, 'live bytes back to what the memory tier keeps');
  const metrics = await scrape(node);
  t.true(metrics.get('tubecache_slice_bytes_live')! <= BUDGET);
  await originClosed();
  // And the video still serves exactly.
  h.origin.setThrottle(id, undefined);
  const whole = await node.get(`/proxy/${id}`);
  t.is(whole.sha256, sha256(bytes));
  await node.close();
});

test.serial('a slice the budget has let go is freed while the response that read it goes on: nothing on the read path keeps it', async (t) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const node = await h.node({ MEMORY_CACHE_BYTES: String(BUDGET), ORIGIN_IDLE_TIMEOUT: '4s' });
  const bytes = randomBytes(1024 * KiB);
  const id = h.video(bytes);
  // The response stalls on slice 2 (its origin request sends nothing) until the idle timeout retries it.
  h.origin.setFault(id, { kind: 'hang-body', afterBytes: 2 * SLICE });
  let answered = false;
  const reply = node.get(`/proxy/${id}`).finally(() => (answered = true));
  const video = node.service.cache.video(id as never);
  await eventually(() => h.origin.statsFor(id).requests.some((request) => request.range?.startsWith(`bytes=${2 * SLICE}-`)), 10_000, 'the origin asked for slice 2');
  const memory = node.service.memory;
  const manifest = memory.getManifest(video)!;
  // Its upload done: only the memory tier holds slice 0.
  await eventually(() => memory.peekSlice(manifest, 0)?.charge.holders === 1, 10_000, 'slice 0 uploaded');
  const first = weakSlice(memory, manifest, 0);
  // Out of memory and out of the budget's pool: only a reference on the read path could keep slice 0 now.
  memory.deleteVideo(video);
  const budget = memory.budget;
  (await budget.charge(budget.maxBytes - (budget.live - budget.pooled), new AbortController().signal)).release();
  t.is(budget.pooled, 0);
  await eventually(() => {
    gc();
    return first.deref() === undefined;
  }, 3_000, "slice 0's memory freed while the response waits on slice 2");
  t.false(answered, 'the response was still going');
  t.is((await reply).sha256, sha256(bytes), 'and the body is exact once the origin answers again');
  await node.close();
});

/** A weak reference to the memory of slice `index`, made outside the test's frame (which would keep it). */
function weakSlice(memory: Node['service']['memory'], manifest: Parameters<Node['service']['memory']['peekSlice']>[0], index: number): WeakRef<ArrayBufferLike> {
  return new WeakRef(memory.peekSlice(manifest, index)!.bytes.buffer);
}
