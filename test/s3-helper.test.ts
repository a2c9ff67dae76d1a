import { createServer as createHttpServer } from 'node:http';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { GetObjectCommand, HeadBucketCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { slowDown } from './helpers/fault-proxy.js';
import { chooseTestS3, decideTestS3, detectDocker, s3ClientFor, startTestS3, type TestS3 } from './helpers/s3.js';

const s3Choice = await chooseTestS3();
const s3Test = s3Choice.available ? test.serial : test.serial.skip;
const skipped = (title: string) => (s3Choice.available ? title : `${title} (skipped: no S3 for tests, reason above)`);

let s3: TestS3;
test.before(async () => {
  if (s3Choice.available) s3 = await startTestS3();
});
test.after.always(async () => {
  await s3?.stop();
});

/** The errno code of a failed SDK call (the SDK wraps Node's error, sometimes as its cause). */
function errorCode(error: unknown): string | undefined {
  for (let current: unknown = error; current instanceof Error; current = (current as Error & { cause?: unknown }).cause) {
    const code = (current as NodeJS.ErrnoException).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** Resolves to the error code of a plain TCP connect to `endpoint`, or 'connected'. */
function tcpConnect(endpoint: string): Promise<string> {
  const url = new URL(endpoint);
  return new Promise((resolveConnect) => {
    const socket = createConnection({ host: url.hostname, port: Number(url.port) });
    socket.setTimeout(2000, () => {
      socket.destroy();
      resolveConnect('timeout');
    });
    socket.on('connect', () => {
      socket.destroy();
      resolveConnect('connected');
    });
    socket.on('error', (error: NodeJS.ErrnoException) => resolveConnect(error.code ?? error.message));
  });
}

// Serial: the pause and fault tests take the shared endpoint away.

s3Test(skipped('the endpoint stores and returns an object; env is complete'), async (t) => {
  t.log(`S3 kind: ${s3.kind}, endpoint ${s3.env.S3_ENDPOINT}`);
  for (const name of ['S3_ENDPOINT', 'S3_REGION', 'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY', 'S3_BUCKET'] as const) t.truthy(s3.env[name], name);
  t.is(s3.env.S3_FORCE_PATH_STYLE, 'true');

  const client = s3ClientFor(s3.env);
  t.teardown(() => client.destroy());
  const body = Buffer.from('hello, tubecache\n'.repeat(1000));
  await client.send(new PutObjectCommand({ Bucket: s3.env.S3_BUCKET, Key: 'v/abc/slice-0', Body: body, ContentType: 'video/mp4' }));
  const got = await client.send(new GetObjectCommand({ Bucket: s3.env.S3_BUCKET, Key: 'v/abc/slice-0' }));
  t.is(got.ContentType, 'video/mp4');
  t.deepEqual(Buffer.from(await got.Body!.transformToByteArray()), body);

  const ranged = await client.send(new GetObjectCommand({ Bucket: s3.env.S3_BUCKET, Key: 'v/abc/slice-0', Range: 'bytes=0-4' }));
  t.is(await ranged.Body!.transformToString(), 'hello');
});

s3Test(skipped('newBucket() creates another, empty bucket with the same endpoint'), async (t) => {
  const other = await s3.newBucket();
  t.not(other.S3_BUCKET, s3.env.S3_BUCKET);
  t.is(other.S3_ENDPOINT, s3.env.S3_ENDPOINT);
  const client = s3ClientFor(other);
  t.teardown(() => client.destroy());
  await t.notThrowsAsync(client.send(new HeadBucketCommand({ Bucket: other.S3_BUCKET })));
  const listing = await client.send(new ListObjectsV2Command({ Bucket: other.S3_BUCKET }));
  t.is(listing.KeyCount ?? 0, 0);
});

s3Test(skipped('pause() refuses connections fast; resume() brings the same data back'), async (t) => {
  // One attempt: the point is how fast a single request fails, not the SDK's retries.
  const client = s3ClientFor(s3.env, { maxAttempts: 1 });
  t.teardown(() => client.destroy());
  const Bucket = s3.env.S3_BUCKET;
  await client.send(new PutObjectCommand({ Bucket, Key: 'survives-pause', Body: 'still here' }));

  await s3.pause();
  t.is(await tcpConnect(s3.env.S3_ENDPOINT), 'ECONNREFUSED');
  const started = performance.now();
  const error = await t.throwsAsync(client.send(new GetObjectCommand({ Bucket, Key: 'survives-pause' })));
  const elapsed = performance.now() - started;
  t.is(errorCode(error), 'ECONNREFUSED');
  t.true(elapsed < 1000, `a request to a paused endpoint took ${elapsed.toFixed(0)} ms`);
  await s3.pause(); // idempotent

  await s3.resume();
  await s3.resume(); // idempotent
  const got = await client.send(new GetObjectCommand({ Bucket, Key: 'survives-pause' }));
  t.is(await got.Body!.transformToString(), 'still here');
});

s3Test(skipped("the fault proxy works on signed S3 traffic: a 503 SlowDown, a reset mid-body, then exact bytes"), async (t) => {
  const client = s3ClientFor(s3.env, { maxAttempts: 1 });
  t.teardown(() => {
    s3.proxy.clear();
    client.destroy();
  });
  const Bucket = s3.env.S3_BUCKET;
  const body = Buffer.alloc(512 * 1024, 'tubecache ');
  await client.send(new PutObjectCommand({ Bucket, Key: 'faulted', Body: body }));

  s3.proxy.failRequests({ ...slowDown, match: (head) => head.method === 'GET' });
  const throttled = await t.throwsAsync(client.send(new GetObjectCommand({ Bucket, Key: 'faulted' })));
  t.is(throttled?.name, 'SlowDown');
  t.is(s3.proxy.stats().httpFaults, 1);

  s3.proxy.set({ resetAfterBytes: 100_000 });
  const cut = client.send(new GetObjectCommand({ Bucket, Key: 'faulted' })).then((got) => got.Body!.transformToByteArray());
  t.is(errorCode(await t.throwsAsync(cut)), 'ECONNRESET');

  s3.proxy.clear();
  const whole = await client.send(new GetObjectCommand({ Bucket, Key: 'faulted' }));
  t.deepEqual(Buffer.from(await whole.Body!.transformToByteArray()), body);
});

test('without S3_TEST_ENDPOINT or Docker there is no S3, and the reason says why and what to do', async (t) => {
  const none = await decideTestS3({}, async () => ({ available: false, reason: 'no Docker engine: nothing answered', ms: 1 }));
  t.false(none.available);
  t.regex(none.reason, /S3_TEST_ENDPOINT is not set and no Docker engine: nothing answered/);
  t.regex(none.reason, /ceph-rgw\.sh/);
  const external = await decideTestS3({ S3_TEST_ENDPOINT: 'http://127.0.0.1:7480' }, () => t.fail('no probe with an endpoint') as never);
  t.like(external, { available: true, kind: 'external' });
  const docker = await decideTestS3({}, async () => ({ available: true, host: 'unix:///x.sock', reason: 'Docker engine at unix:///x.sock', ms: 1 }));
  t.like(docker, { available: true, kind: 'minio' });
});

test('Docker detection decides in well under a second', async (t) => {
  const probe = await detectDocker();
  t.log(`${probe.available ? 'Docker available' : 'no Docker'} in ${probe.ms.toFixed(1)} ms: ${probe.reason}`);
  t.true(probe.ms < 1000, `detectDocker took ${probe.ms.toFixed(0)} ms`);
});

test('Docker detection: an engine answering /_ping is found; one that hangs is given up on', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'tubecache-docker-'));
  const answering = createHttpServer((request, response) => response.end(request.url === '/_ping' ? 'OK' : ''));
  const hanging = createServer(() => undefined); // accepts, never answers
  const held = new Set<Socket>();
  hanging.on('connection', (socket) => held.add(socket));
  const listenOn = (server: Server, path: string) =>
    new Promise<void>((resolveListen) => server.listen(path, resolveListen));
  await listenOn(answering, join(directory, 'ok.sock'));
  await listenOn(hanging, join(directory, 'hang.sock'));
  t.teardown(async () => {
    for (const socket of held) socket.destroy();
    await new Promise((resolveClose) => answering.close(resolveClose));
    await new Promise((resolveClose) => hanging.close(resolveClose));
    await rm(directory, { recursive: true, force: true });
  });

  const found = await detectDocker({ host: `unix://${join(directory, 'ok.sock')}` });
  t.true(found.available, found.reason);

  const gaveUp = await detectDocker({ host: `unix://${join(directory, 'hang.sock')}`, timeoutMs: 300 });
  t.false(gaveUp.available);
  t.regex(gaveUp.reason, /no answer within 300 ms/);
  t.true(gaveUp.ms >= 250 && gaveUp.ms < 1000, `${gaveUp.ms} ms`);
});
