/**
 * The ObjectStore contract, run against every store: memory, disk, S3 (a real
 * server: S3_TEST_ENDPOINT, e.g. the Ceph RGW of scripts/, or MinIO in Docker)
 * and the fault-injecting wrapper.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { DiskStore } from '../../src/cache/disk-store.js';
import { MemoryStore } from '../../src/cache/memory-store.js';
import { S3Store, s3SettingsFrom } from '../../src/cache/s3-store.js';
import { listAll, readAll, type ObjectStore } from '../../src/cache/store.js';
import { loadConfig } from '../../src/config.js';
import { isTubeError } from '../../src/errors.js';
import { FaultStore } from '../helpers/fault-store.js';
import { chooseTestS3, startTestS3, type TestS3 } from '../helpers/s3.js';

interface Subject {
  name: string;
  open(): Promise<ObjectStore>;
  close(): Promise<void>;
}

const s3Choice = await chooseTestS3();
const noS3 = s3Choice.available ? undefined : s3Choice.reason;

let scratch: string;
let s3: TestS3 | undefined;
test.before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'tubecache-conformance-'));
  if (!noS3) s3 = await startTestS3();
});
test.after.always(async () => {
  await s3?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

let stores = 0;
const subjects: Subject[] = [
  { name: 'memory', open: async () => new MemoryStore(), close: async () => undefined },
  { name: 'disk', open: () => DiskStore.open(join(scratch, `disk-${stores++}`)), close: async () => undefined },
  { name: 'faults', open: async () => new FaultStore(new MemoryStore(), { pieceBytes: 1000 }), close: async () => undefined },
  ...(noS3 ? [] : [{ name: 's3', open: async () => new S3Store(s3SettingsFrom(loadConfig(await s3!.newBucket()))), close: async () => undefined }]),
];

const text = async (store: ObjectStore, key: string, range?: { start: number; end?: number }) => {
  const object = await store.get(key, range);
  if (!object) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of object.body) chunks.push(chunk);
  return { object, bytes: Buffer.concat(chunks) };
};

/** A body that arrives in `parts`, a turn apart, so two puts interleave. */
async function* slowly(bytes: Buffer, parts: number, failAt?: number): AsyncGenerator<Buffer> {
  const size = Math.ceil(bytes.length / parts);
  for (let i = 0; i < parts; i++) {
    if (i === failAt) throw new Error('the writer died mid-body');
    await new Promise((resolve) => setImmediate(resolve));
    yield bytes.subarray(i * size, (i + 1) * size);
  }
}

for (const subject of subjects) {
  const it = (title: string, body: (t: import('ava').ExecutionContext, store: ObjectStore) => Promise<void>) =>
    test(`${subject.name}: ${title}`, async (t) => {
      const store = await subject.open();
      t.teardown(() => store.close());
      await body(t, store);
    });

  it('an absent object is undefined for get and head, never an exception', async (t, store) => {
    t.is(await store.get('nothing/here'), undefined);
    t.is(await store.head('nothing/here'), undefined);
    t.is(await store.get('nothing/here', { start: 5, end: 9 }), undefined);
  });

  it('put then get and head: bytes, size, content type and metadata', async (t, store) => {
    const bytes = randomBytes(100_000);
    const { etag } = await store.put('a/b/object', bytes, { contentType: 'video/mp4', metadata: { version: 'v1' } });
    const read = await text(store, 'a/b/object');
    t.true(read!.bytes.equals(bytes));
    t.like(read!.object, { key: 'a/b/object', size: bytes.length, start: 0, end: bytes.length - 1, contentType: 'video/mp4', metadata: { version: 'v1' }, etag });
    const head = await store.head('a/b/object');
    t.like(head, { size: bytes.length, contentType: 'video/mp4', metadata: { version: 'v1' }, etag });
    t.true(Math.abs(head!.lastModified - Date.now()) < 5 * 60_000, 'lastModified is about now');
  });

  it('ranges: first byte, middle, last byte, an end past the end, a start past the end', async (t, store) => {
    const bytes = randomBytes(70_000);
    await store.put('ranged', bytes);
    for (const [start, end] of [[0, 0], [30_000, 40_000], [69_999, 69_999], [65_000, 1_000_000], [0, undefined]] as const) {
      const read = (await text(store, 'ranged', { start, end }))!;
      const last = Math.min(end ?? Infinity, bytes.length - 1);
      t.true(read.bytes.equals(bytes.subarray(start, last + 1)), `${start}-${end}`);
      t.like(read.object, { start, end: last, size: bytes.length }, `${start}-${end}`);
    }
    for (const start of [70_000, 90_000]) {
      const past = (await text(store, 'ranged', { start }))!;
      t.is(past.bytes.length, 0, `start ${start}`);
      t.is(past.object.size, bytes.length);
    }
  });

  it('overwrite: the second put wins, with a new etag', async (t, store) => {
    const first = await store.put('over', Buffer.from('first version'));
    const second = await store.put('over', Buffer.from('second'));
    t.is((await readAll(store, 'over'))!.toString(), 'second');
    t.not(first.etag, second.etag);
    t.is((await store.head('over'))!.size, 6);
  });

  it('list: 1,050 keys in key order over pages with a cursor, startAfter and prefix', async (t, store) => {
    const keys = Array.from({ length: 1050 }, (_, i) => `many/${String(i).padStart(5, '0')}`);
    for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((key) => store.put(key, Buffer.from(key))));
    await store.put('many-sibling', Buffer.from('x')); // "many-" sorts before "many/" and is outside the prefix
    await store.put('manyz', Buffer.from('x'));
    const first = await store.list({ prefix: 'many/' });
    t.is(first.objects.length, 1000);
    t.truthy(first.cursor);
    const second = await store.list({ prefix: 'many/', cursor: first.cursor });
    t.is(second.cursor, undefined);
    t.deepEqual([...first.objects, ...second.objects].map((o) => o.key), keys);
    t.true(first.objects.every((o) => o.size === 10));
    const small = await store.list({ prefix: 'many/', startAfter: keys[1046], limit: 2 });
    t.deepEqual(small.objects.map((o) => o.key), [keys[1047], keys[1048]]);
    const pages: string[] = [];
    for await (const page of listAll(store, 'many')) pages.push(...page.map((o) => o.key));
    t.deepEqual(pages, ['many-sibling', ...keys, 'manyz'], 'byte order: "-" < "/" < "z"');
  });

  it('delete: present and absent keys, no failures; deleted objects are misses', async (t, store) => {
    await store.put('gone/1', Buffer.from('1'));
    await store.put('gone/2', Buffer.from('2'));
    t.deepEqual(await store.delete(['gone/1', 'gone/2', 'gone/never-was']), []);
    t.is(await store.get('gone/1'), undefined);
    t.deepEqual((await store.list({ prefix: 'gone/' })).objects, []);
  });

  it('two concurrent puts of one key leave one writer’s bytes, never a mix', async (t, store) => {
    const a = Buffer.alloc(300_000, 'a');
    const b = Buffer.alloc(300_000, 'b');
    await Promise.all([store.put('race', slowly(a, 30)), store.put('race', slowly(b, 30))]);
    const result = (await readAll(store, 'race'))!;
    t.true(result.equals(a) || result.equals(b), 'all a or all b');
  });

  it('a put that fails mid-body leaves nothing visible (and an older object intact)', async (t, store) => {
    await t.throwsAsync(store.put('aborted', slowly(randomBytes(200_000), 10, 5)));
    t.is(await store.get('aborted'), undefined);
    t.deepEqual((await store.list({ prefix: 'aborted' })).objects, []);
    await store.put('kept', Buffer.from('old'));
    const controller = new AbortController();
    const body = (async function* () {
      yield Buffer.from('new bytes that never land');
      controller.abort(new Error('the writer gave up'));
      await new Promise((resolve) => setImmediate(resolve));
      yield Buffer.from('more');
    })();
    await t.throwsAsync(store.put('kept', body, { signal: controller.signal }));
    t.is((await readAll(store, 'kept'))!.toString(), 'old');
  });

  it('conditional puts: ifNoneMatch "*" and ifMatch', async (t, store) => {
    if (!store.conditionalWrites) return void t.log(`${subject.name} has no conditional writes: skipped`);
    const first = await store.put('lease', Buffer.from('one'), { ifNoneMatch: '*' });
    const refused = await t.throwsAsync(store.put('lease', Buffer.from('two'), { ifNoneMatch: '*' }));
    t.true(isTubeError(refused, 'PRECONDITION_FAILED'), String(refused));
    const second = await store.put('lease', Buffer.from('two'), { ifMatch: first.etag });
    const stale = await t.throwsAsync(store.put('lease', Buffer.from('three'), { ifMatch: first.etag }));
    t.true(isTubeError(stale, 'PRECONDITION_FAILED'), String(stale));
    t.is((await readAll(store, 'lease'))!.toString(), 'two');
    t.is((await store.head('lease'))!.etag, second.etag);
    // Of two racing creators exactly one wins.
    const results = await Promise.allSettled([1, 2, 3].map((n) => store.put('race-create', Buffer.from(String(n)), { ifNoneMatch: '*' })));
    t.is(results.filter((r) => r.status === 'fulfilled').length, 1);
  });
}
