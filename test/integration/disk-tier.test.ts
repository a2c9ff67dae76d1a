/**
 * The disk tier in a running service, in front of a real S3 (through the fault
 * proxy): a restarted node serves what its disk holds as HIT-DISK with S3
 * frozen, a damaged disk file is never served, and the directory stays within
 * DISK_CACHE_BYTES (plus at most one slice) while videos stream.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { bytesUnder } from '../helpers/disk-usage.js';
import { fixture, fixtureSha, sha256, startHarness, type Harness, type Node } from '../helpers/harness.js';
import { chooseTestS3 } from '../helpers/s3.js';
import { DEFAULT_S3_DEADLINES } from '../faults/support.js';

const s3Choice = await chooseTestS3();
if (!s3Choice.available) console.log(`test/integration/disk-tier.test.ts skipped: ${s3Choice.reason}`);
const s3Test = s3Choice.available ? test.serial : test.serial.skip;

const SLICE = 256 * 1024;
const TOKEN = 'disk-tier-admin-token';

let h: Harness;
const dirs: string[] = [];
test.before(async () => {
  if (s3Choice.available) h = await startHarness({ store: 's3' });
});
test.afterEach.always(() => h?.store.s3?.proxy.clear());
test.after.always(async () => {
  await h?.close();
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function diskDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tubecache-disk-tier-'));
  dirs.push(dir);
  return dir;
}

/** A node on `dir` streams the whole video from the origin, writes it to its disk tier, and stops. */
async function warmDisk(dir: string, id: string): Promise<void> {
  const writer = await h.node({ DISK_CACHE_DIR: dir });
  const reply = await writer.get(`/proxy/${id}`);
  if (reply.sha256 !== fixtureSha) throw new Error('the first node served wrong bytes');
  await writer.service.cache.idle();
  await writer.close();
}

/** A counter's values with their labels (read as plain strings). */
const counted = async (node: Node, metric: 'bytesServed' | 'storeOperations' | 'integrityFailures') =>
  (await node.service.metrics[metric].get()).values.map(({ labels, value }) => ({ labels: labels as Record<string, string | undefined>, value }));

s3Test('a restarted node with S3 frozen serves its disk-held slices exact, as HIT-DISK, without asking S3', async (t) => {
  const dir = await diskDir();
  const id = h.video(fixture, { reportDuration: 30 });
  await warmDisk(dir, id);

  const node = await h.node({ DISK_CACHE_DIR: dir, ADMIN_TOKEN: TOKEN, ...DEFAULT_S3_DEADLINES });
  h.store.s3!.proxy.set({ frozen: true });
  const [start, end] = [SLICE + 5, 3 * SLICE - 1];
  const range = await node.get(`/proxy/${id}`, { Range: `bytes=${start}-${end}` });
  t.is(range.status, 206);
  t.is(range.headers['x-cache-status'], 'HIT-DISK');
  t.is(range.sha256, sha256(fixture.subarray(start, end + 1)));
  // Slices 1 and 2 are in memory now; the rest of the video comes from the disk.
  const whole = await node.get(`/proxy/${id}`);
  t.is(whole.status, 200);
  t.is(whole.headers['x-cache-status'], 'HIT-DISK');
  t.is(whole.sha256, fixtureSha);

  const fromDisk = end - start + 1 + fixture.length - 2 * SLICE;
  const served = await counted(node, 'bytesServed');
  t.is(served.find((v) => v.labels.tier === 'disk')?.value, fromDisk);
  t.is(served.find((v) => v.labels.tier === 'memory')?.value, 2 * SLICE);
  t.deepEqual(served.filter((v) => v.labels.tier === 's3' || v.labels.tier === 'origin'), [], 'nothing from S3 or the origin');
  const s3Reads = (await counted(node, 'storeOperations')).filter((v) => v.labels.store === 's3' && v.labels.operation?.startsWith('get'));
  t.deepEqual(s3Reads, [], 'no S3 read was tried');

  const stats = JSON.parse((await node.get('/admin/stats', { Authorization: `Bearer ${TOKEN}` })).body.toString());
  t.is(stats.tiers.disk.bytes, fromDisk);
  t.true(stats.disk.bytes > fixture.length, 'the files hold the video and its manifest');
  t.is(stats.disk.maxBytes, node.service.config.DISK_CACHE_BYTES);
  h.store.s3!.proxy.clear();
  await node.close();
});

s3Test('a flipped byte in a disk-tier file is never served: counted, the read continues from S3 or the origin, the file is replaced', async (t) => {
  const dir = await diskDir();
  const id = h.video(fixture, { reportDuration: 30 });
  await warmDisk(dir, id);
  const path = join(dir, 'objects', 'videos', id, 'video', 'slices', '1');
  const file = await readFile(path);
  // Past the first three 64 KiB chunks: verified chunks are served before the bad one is met.
  file[file.length - SLICE + 3 * 64 * 1024 + 1234]! ^= 0x01;
  await writeFile(path, file);

  const wanted = fixture.subarray(SLICE, 2 * SLICE);
  const reader = await h.node({ DISK_CACHE_DIR: dir });
  const reply = await reader.get(`/proxy/${id}`, { Range: `bytes=${SLICE}-${2 * SLICE - 1}` });
  t.is(reply.status, 206);
  t.is(reply.sha256, sha256(wanted), 'exact bytes');
  const failures = await counted(reader, 'integrityFailures');
  t.deepEqual(failures.map(({ labels, value }) => [labels.store, value]), [['disk', 1]]);
  await reader.service.cache.idle();
  await reader.close();

  const again = await h.node({ DISK_CACHE_DIR: dir });
  const second = await again.get(`/proxy/${id}`, { Range: `bytes=${SLICE}-${2 * SLICE - 1}` });
  t.is(second.headers['x-cache-status'], 'HIT-DISK', 'the replaced file is a disk hit');
  t.is(second.sha256, sha256(wanted));
  t.deepEqual(await counted(again, 'integrityFailures'), [], 'the replacement passes its check');
  await again.close();
});

s3Test('while videos stream, the disk tier directory stays within DISK_CACHE_BYTES plus one slice, evicting as it goes', async (t) => {
  const dir = await diskDir();
  const budget = 3 * SLICE + 40_000;
  const node = await h.node({ DISK_CACHE_DIR: dir, DISK_CACHE_BYTES: String(budget) });
  let most = 0;
  let streaming = true;
  const watch = (async () => {
    while (streaming) {
      most = Math.max(most, await bytesUnder(dir));
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  })();
  for (let video = 0; video < 3; video++) {
    const id = h.video(fixture, { reportDuration: 30 });
    t.is((await node.get(`/proxy/${id}`)).sha256, fixtureSha);
    await node.service.cache.idle();
  }
  streaming = false;
  await watch;
  t.log(`most bytes seen in the directory: ${most} (budget ${budget}, slice ${SLICE})`);
  t.true(most <= budget + SLICE, `${most} bytes at most, budget ${budget}`);
  t.true(node.service.disk!.bytes <= budget);
  t.true((await node.service.metrics.diskEvictions.get()).values[0]!.value > 0, 'evictions were counted');
  await node.close();
});
