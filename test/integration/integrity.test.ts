/**
 * No corrupted byte is ever served: one byte of a stored slice is flipped (in
 * the file under DATA_DIR, or in the S3 object rewritten with its metadata),
 * and a node that never saw the video serves exact bytes, counts the mismatch,
 * and replaces the object.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { readAll } from '../../src/cache/store.js';
import type { VideoId } from '../../src/origin/video-id.js';
import { fixture, fixtureSha, sha256, startHarness, type Harness, type Node } from '../helpers/harness.js';
import { chooseTestS3 } from '../helpers/s3.js';

const SLICE = 256 * 1024;
/** Past the first 64 KiB chunk: the reader has served verified chunks before it meets the bad one. */
const FLIP_AT = 3 * 64 * 1024 + 1234;

const s3Choice = await chooseTestS3();
const noS3 = s3Choice.available ? undefined : s3Choice.reason;

const harnesses = new Map<'disk' | 's3', Harness>();
test.before(async () => {
  harnesses.set('disk', await startHarness());
  if (!noS3) harnesses.set('s3', await startHarness({ store: 's3' }));
});
test.after.always(() => Promise.all([...harnesses.values()].map((h) => h.close())));

/** Flips the byte FLIP_AT bytes into slice `index`'s data, as damage from outside tubecache would. */
async function flip(h: Harness, node: Node, key: string): Promise<void> {
  const store = node.service.store.store;
  if (h.store.kind === 'disk') {
    // The file itself: a header line, then the stored slice (its digest header, then the bytes).
    const path = join(node.service.config.DATA_DIR, 'objects', ...key.split('/'));
    const file = await readFile(path);
    file[file.length - SLICE + FLIP_AT]! ^= 0x01;
    await writeFile(path, file);
    return;
  }
  const object = (await store.get(key))!;
  const bytes = (await readAll(store, key))!;
  bytes[bytes.length - SLICE + FLIP_AT]! ^= 0x01;
  await store.put(key, bytes, { contentType: object.contentType, metadata: object.metadata });
}

for (const kind of ['disk', 's3'] as const) {
  (kind === 's3' && noS3 ? test.skip : test)(`${kind}: a flipped byte in a stored slice is caught, counted, replaced, and never served`, async (t) => {
    const h = harnesses.get(kind)!;
    const id = h.video(fixture, { reportDuration: 30 });
    const writer = await h.node();
    t.is((await writer.get(`/proxy/${id}`)).sha256, fixtureSha);
    await writer.service.cache.idle();
    const video = writer.service.cache.video(id as VideoId);
    const manifest = (await writer.service.store.getManifest(video, SLICE))!;
    t.true(manifest.persisted.includes(1), 'slice 1 is stored');
    const key = writer.service.store.keys.slice(manifest, 1);
    await flip(h, writer, key);

    const reader = await h.node();
    const before = h.origin.statsFor(id).mediaBytes;
    const reply = await reader.get(`/proxy/${id}`, { Range: `bytes=${SLICE}-${2 * SLICE - 1}` });
    t.is(reply.status, 206);
    t.is(reply.sha256, sha256(fixture.subarray(SLICE, 2 * SLICE)), 'exact bytes');
    // The verified chunks before the bad one came from the store; the origin sent the rest of the slice.
    t.is(h.origin.statsFor(id).mediaBytes - before, SLICE - 3 * 64 * 1024);
    const failures = await reader.service.metrics.integrityFailures.get();
    t.deepEqual(failures.values.map(({ labels, value }) => [labels.store, value]), [[kind, 1]]);

    await reader.service.cache.idle();
    const fresh = await h.node();
    const again = await fresh.get(`/proxy/${id}`, { Range: `bytes=${SLICE}-${2 * SLICE - 1}` });
    t.is(again.headers['x-cache-status'], h.store.hit, 'the replaced slice is a hit again');
    t.is(again.sha256, sha256(fixture.subarray(SLICE, 2 * SLICE)));
    t.is(h.origin.statsFor(id).mediaBytes - before, SLICE - 3 * 64 * 1024, 'no origin bytes for the replaced slice');
    t.is((await fresh.service.metrics.integrityFailures.get()).values.length, 0, 'the replacement passes its check');
  });
}
