import test from 'ava';
import { MemoryTier } from '../../src/cache/memory-tier.js';
import { createManifest, type Manifest } from '../../src/cache/manifest.js';
import { SliceBudget } from '../../src/cache/slice-budget.js';
import { createMetrics } from '../../src/metrics.js';
import type { VideoId } from '../../src/origin/video-id.js';

const manifest = createManifest({ id: 'abcdefghijk' as VideoId, format: '18', selector: '18' }, { contentType: 'video/mp4', size: 10 * 1024, duration: 10, lmt: '1', sliceBytes: 1024, headSlices: 3 });

/** A slice charged to the memory tier's budget and kept by it (the fill's own hold let go, as when a fetch ends unread). */
function keep(memory: MemoryTier, at: Manifest, index: number): boolean {
  const charge = memory.budget.tryCharge(1024);
  if (!charge) return false;
  memory.putSlice(at, index, Buffer.alloc(1024, index), charge);
  charge.release();
  return true;
}

test('a full budget drops the least recently used slices nobody holds, and counts them', async (t) => {
  const metrics = createMetrics();
  // 4 KiB: 3 KiB for kept slices, the rest for chunks streamed through.
  const memory = new MemoryTier({ budget: new SliceBudget(4 * 1024), ttlMs: 60_000, metrics });
  for (const index of [0, 1, 2]) t.true(keep(memory, manifest, index));
  memory.getSlice(manifest, 0); // 0 is now the most recent; 1 the least
  t.true(keep(memory, manifest, 3));
  t.truthy(memory.peekSlice(manifest, 0));
  t.is(memory.peekSlice(manifest, 1), undefined, 'the least recently used slice went');
  t.truthy(memory.peekSlice(manifest, 2));
  t.deepEqual(memory.getSlice(manifest, 3)?.bytes, Buffer.alloc(1024, 3));
  t.is(memory.budget.live, 3 * 1024);
  t.is((await metrics.memoryEvictions.get()).values[0]?.value, 1);
});

test('a slice a reader holds is not dropped for room: the next least recent one is, and a charge that finds none is refused', (t) => {
  const memory = new MemoryTier({ budget: new SliceBudget(4 * 1024), ttlMs: 60_000, metrics: createMetrics() });
  for (const index of [0, 1, 2]) keep(memory, manifest, index);
  const held = memory.getSlice(manifest, 0)!.charge.hold();
  memory.getSlice(manifest, 1);
  memory.getSlice(manifest, 2);
  t.true(keep(memory, manifest, 3));
  t.truthy(memory.peekSlice(manifest, 0), 'held, so kept although least recently used');
  t.is(memory.peekSlice(manifest, 1), undefined);
  // Every cached slice held: nothing can be reclaimed.
  const holds = [2, 3].map((index) => memory.getSlice(manifest, index)!.charge.hold());
  t.is(memory.budget.tryCharge(1024), undefined);
  t.is(memory.budget.live, 3 * 1024);
  for (const charge of [held, ...holds]) charge.release();
  t.truthy(memory.budget.tryCharge(1024), 'released: reclaimable again');
  t.true(memory.budget.live <= memory.budget.keepLimit);
});

test('manifests live apart from slices: slice traffic never evicts them', (t) => {
  const memory = new MemoryTier({ budget: new SliceBudget(4 * 1024), ttlMs: 60_000, metrics: createMetrics() });
  memory.putManifest(manifest);
  for (let index = 0; index < 10; index++) keep(memory, { ...manifest, id: `video${String(index).padStart(6, '0')}` as VideoId }, 0);
  t.is(memory.getManifest(manifest), manifest);
  t.is(memory.deleteVideo(manifest), 1);
  t.is(memory.getManifest(manifest), undefined);
});

test('entries expire after the TTL and give their bytes back; slices of another manifest version are not returned', async (t) => {
  const memory = new MemoryTier({ budget: new SliceBudget(1 << 20), ttlMs: 50, metrics: createMetrics() });
  keep(memory, manifest, 0);
  t.is(memory.getSlice({ ...manifest, etag: '"other"' }, 0), undefined, 'keyed by ETag');
  await new Promise((resolve) => setTimeout(resolve, 80));
  t.is(memory.getSlice(manifest, 0), undefined);
  t.is(memory.budget.live, 0);
});
