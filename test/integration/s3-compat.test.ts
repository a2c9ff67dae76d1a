/**
 * What tubecache needs from an S3 server, checked against the one the suite uses
 * (Ceph RGW in CI, MinIO where Docker answers, any S3_TEST_ENDPOINT), with clients
 * built by tubecache's own createS3Client so the settings are the service's.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import test from 'ava';
import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, paginateListObjectsV2, type S3Client } from '@aws-sdk/client-s3';
import { chooseTestS3, s3ClientFor, startTestS3, type TestS3 } from '../helpers/s3.js';

const s3Choice = await chooseTestS3();
const s3Test = s3Choice.available ? test : test.skip;
const skipped = (title: string) => (s3Choice.available ? title : `${title} (skipped: no S3 for tests, reason above)`);

let s3: TestS3;
let client: S3Client;
let Bucket: string;
test.before(async () => {
  if (!s3Choice.available) return;
  s3 = await startTestS3();
  client = s3ClientFor(s3.env);
  Bucket = s3.env.S3_BUCKET;
});
test.after.always(async () => {
  client?.destroy();
  await s3?.stop();
});

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const statusOf = (error: unknown) => (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;

async function read(key: string, range?: string) {
  const got = await client.send(new GetObjectCommand({ Bucket, Key: key, Range: range }));
  return { ...got, bytes: Buffer.from(await got.Body!.transformToByteArray()) };
}

s3Test(skipped('ranged GETs: first, middle and last byte, to the end, past the end; user metadata comes with them'), async (t) => {
  const body = randomBytes(100_000);
  await client.send(new PutObjectCommand({ Bucket, Key: 'ranges', Body: body, Metadata: { etag: 'v1-abc' } }));
  const n = body.length;
  for (const [from, to] of [
    [0, 0],
    [n / 2, n / 2 + 9],
    [n - 1, n - 1],
    [12_345, n - 1], // tubecache's form: an absolute offset to the end of the slice
  ] as const) {
    const got = await read('ranges', `bytes=${from}-${to}`);
    t.is(got.$metadata.httpStatusCode, 206);
    t.is(got.ContentRange, `bytes ${from}-${to}/${n}`, 'the total length tubecache checks');
    t.is(sha256(got.bytes), sha256(body.subarray(from, to + 1)), `${from}-${to}`);
    t.is(got.Metadata?.etag, 'v1-abc', 'user metadata on a ranged GET');
  }
  const past = await t.throwsAsync(read('ranges', `bytes=${n}-${n + 10}`));
  t.is(statusOf(past), 416);
});

s3Test(skipped('conditional PutObject: If-None-Match: * creates once, then 412 and the first bytes stay'), async (t) => {
  await client.send(new PutObjectCommand({ Bucket, Key: 'lease', Body: 'first', IfNoneMatch: '*' }));
  const error = await t.throwsAsync(client.send(new PutObjectCommand({ Bucket, Key: 'lease', Body: 'second', IfNoneMatch: '*' })));
  t.is(statusOf(error), 412);
  t.is(error?.name, 'PreconditionFailed');
  t.is((await read('lease')).bytes.toString(), 'first');
});

s3Test(skipped('conditional PutObject: If-Match with the ETag read succeeds, with a stale one 412'), async (t) => {
  const first = await client.send(new PutObjectCommand({ Bucket, Key: 'guarded', Body: 'v1' }));
  // RGW 16 compares If-Match on PUT with its stored ETag, which has no quotes, so
  // the quoted form S3 returns never matches there; the bare form matches on RGW,
  // MinIO and AWS alike.
  const bare = (etag: string | undefined) => etag!.replaceAll('"', '');
  const quoted = await client.send(new PutObjectCommand({ Bucket, Key: 'guarded', Body: 'v2?', IfMatch: first.ETag })).then(
    () => 'accepted',
    (error: unknown) => `answered ${statusOf(error)}`,
  );
  t.log(`If-Match with the quoted, current ETag ${first.ETag}: ${quoted} (${s3.kind})`);
  const current = (await read('guarded')).ETag;

  const second = await client.send(new PutObjectCommand({ Bucket, Key: 'guarded', Body: 'v3', IfMatch: bare(current) }));
  t.not(second.ETag, current);
  const stale = await t.throwsAsync(client.send(new PutObjectCommand({ Bucket, Key: 'guarded', Body: 'v4', IfMatch: bare(current) })));
  t.is(statusOf(stale), 412);
  t.is((await read('guarded')).bytes.toString(), 'v3');
  const absent = await t.throwsAsync(client.send(new PutObjectCommand({ Bucket, Key: 'guarded-absent', Body: 'x', IfMatch: bare(current) })));
  t.true([404, 412].includes(statusOf(absent)!), `If-Match on a missing key: ${statusOf(absent)}`);
});

s3Test(skipped('ListObjectsV2 pages through 1,010 keys with continuation tokens, Prefix and StartAfter; DeleteObjects batches of 1,000 remove them'), async (t) => {
  const env = await s3.newBucket();
  const lister = s3ClientFor(env);
  t.teardown(() => lister.destroy());
  const keys = Array.from({ length: 1010 }, (_, i) => `videos/v${String(i).padStart(5, '0')}/manifest.json`);
  for (let i = 0; i < keys.length; i += 50) {
    await Promise.all(keys.slice(i, i + 50).map((Key) => lister.send(new PutObjectCommand({ Bucket: env.S3_BUCKET, Key, Body: '{}' }))));
  }
  await lister.send(new PutObjectCommand({ Bucket: env.S3_BUCKET, Key: 'other/outside-the-prefix', Body: 'x' }));

  const listAll = async (options: { MaxKeys?: number; StartAfter?: string } = {}) => {
    const listed: string[] = [];
    let pages = 0;
    for await (const page of paginateListObjectsV2({ client: lister }, { Bucket: env.S3_BUCKET, Prefix: 'videos/', ...options })) {
      pages++;
      for (const object of page.Contents ?? []) listed.push(object.Key!);
    }
    return { listed, pages };
  };
  const first = await lister.send(new ListObjectsV2Command({ Bucket: env.S3_BUCKET, Prefix: 'videos/' }));
  t.true(first.IsTruncated);
  t.is(first.KeyCount, 1000);
  t.truthy(first.NextContinuationToken);
  t.deepEqual(await listAll(), { listed: keys, pages: 2 });
  t.deepEqual(await listAll({ MaxKeys: 300 }), { listed: keys, pages: 4 });
  t.deepEqual(await listAll({ StartAfter: keys[499] }), { listed: keys.slice(500), pages: 1 });

  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000).map((Key) => ({ Key }));
    const result = await lister.send(new DeleteObjectsCommand({ Bucket: env.S3_BUCKET, Delete: { Objects: batch, Quiet: true } }));
    t.deepEqual(result.Errors ?? [], []);
  }
  t.deepEqual(await listAll(), { listed: [], pages: 1 });
});

s3Test(skipped('DeleteObjects: present and absent keys in one batch, quiet and verbose'), async (t) => {
  for (const Key of ['del/a', 'del/b', 'del/keep']) await client.send(new PutObjectCommand({ Bucket, Key, Body: Key }));
  const verbose = await client.send(
    new DeleteObjectsCommand({ Bucket, Delete: { Objects: [{ Key: 'del/a' }, { Key: 'del/absent-1' }] } }),
  );
  t.deepEqual(verbose.Errors ?? [], []);
  t.deepEqual((verbose.Deleted ?? []).map((deleted) => deleted.Key).sort(), ['del/a', 'del/absent-1'], 'absent keys count as deleted');
  const quiet = await client.send(
    new DeleteObjectsCommand({ Bucket, Delete: { Objects: [{ Key: 'del/b' }, { Key: 'del/absent-2' }], Quiet: true } }),
  );
  t.deepEqual(quiet.Errors ?? [], []);
  t.deepEqual(quiet.Deleted ?? [], [], 'quiet mode names nothing');
  const left = await client.send(new ListObjectsV2Command({ Bucket, Prefix: 'del/' }));
  t.deepEqual((left.Contents ?? []).map((object) => object.Key), ['del/keep']);
});

s3Test(skipped("checksums WHEN_REQUIRED (tubecache's default): Buffer and stream uploads store exact bytes"), async (t) => {
  const body = randomBytes(300_000);
  await client.send(new PutObjectCommand({ Bucket, Key: 'wr/buffer', Body: body }));
  await client.send(
    new PutObjectCommand({ Bucket, Key: 'wr/stream', Body: Readable.from([body.subarray(0, 100_000), body.subarray(100_000)]), ContentLength: body.length }),
  );
  for (const key of ['wr/buffer', 'wr/stream']) t.is(sha256((await read(key)).bytes), sha256(body), key);
});

s3Test(skipped('checksums WHEN_SUPPORTED: Buffer bodies work; a stream body either stores exact bytes or is refused, never stored framed'), async (t) => {
  const supported = s3ClientFor({ ...s3.env, S3_CHECKSUMS: 'WHEN_SUPPORTED' }, { maxAttempts: 1 });
  t.teardown(() => supported.destroy());
  const body = randomBytes(200_000);
  await supported.send(new PutObjectCommand({ Bucket, Key: 'ws/buffer', Body: body }));
  t.is(sha256((await read('ws/buffer')).bytes), sha256(body));

  // A stream body gets the SDK's aws-chunked framing with a CRC32 trailer.
  const streamed = await supported
    .send(new PutObjectCommand({ Bucket, Key: 'ws/stream', Body: Readable.from([body.subarray(0, 50_000), body.subarray(50_000)]), ContentLength: body.length }))
    .then(
      () => 'stored',
      (error: unknown) => `${(error as Error).name} ${statusOf(error)}`,
    );
  t.log(`WHEN_SUPPORTED stream upload on ${s3.kind}: ${streamed}`);
  if (streamed === 'stored') t.is(sha256((await read('ws/stream')).bytes), sha256(body), 'no framing stored as data');
  else t.is(streamed, 'MissingContentLength 411', 'RGW 16 refuses aws-chunked trailers this way');
});
