import test from 'ava';
import { MemoryTier } from '../../src/cache/memory-tier.js';
import { createManifest } from '../../src/cache/manifest.js';
import { createMetrics } from '../../src/metrics.js';
import type { VideoId } from '../../src/origin/video-id.js';

const manifest = createManifest({ id: 'abcdefghijk' as VideoId, format: '18', selector: '18' }, { contentType: 'video/mp4', size: 10 * 1024, duration: 10, lmt: '1', sliceBytes: 1024, headSlices: 3 });

test('the byte budget holds: least recently used slices are evicted first, and counted', async (t) => {
  const metrics = createMetrics();
  const memory = new MemoryTier({ maxBytes: 3 * 1024, ttlMs: 60_000, metrics });
  for (const index of [0, 1, 2]) memory.putSlice(manifest, index, Buffer.alloc(1024, index));
  memory.getSlice(manifest, 0); // 0 is now the most recent; 1 the least
  memory.putSlice(manifest, 3, Buffer.alloc(1024, 3));
  t.truthy(memory.peekSlice(manifest, 0));
  t.is(memory.peekSlice(manifest, 1), undefined, 'the least recently used slice went');
  t.truthy(memory.peekSlice(manifest, 2));
  t.deepEqual(memory.getSlice(manifest, 3), Buffer.alloc(1024, 3));
  t.true(memory.bytes <= 3 * 1024);
  t.is((await metrics.memoryEvictions.get()).values[0]?.value, 1);
});

test('entries expire after the TTL; slices of another manifest version are not returned', async (t) => {
  const memory = new MemoryTier({ maxBytes: 1 << 20, ttlMs: 50, metrics: createMetrics() });
  memory.putSlice(manifest, 0, Buffer.alloc(1024));
  t.is(memory.getSlice({ ...manifest, etag: '"other"' }, 0), undefined, 'keyed by ETag');
  await new Promise((resolve) => setTimeout(resolve, 80));
  t.is(memory.getSlice(manifest, 0), undefined);
});
