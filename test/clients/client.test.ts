/**
 * tubecache/client against real tubecache nodes (and, for the failure paths a
 * node never produces, a bare HTTP server that misbehaves on purpose).
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { createTubecacheClient, TubecacheClientError, type ClientLogger } from 'tubecache/client';
import { eventually, fixture, sha256, startHarness, type Harness, type Node } from '../helpers/harness.js';

let h: Harness;
let node: Node;
let admin: Node;
const ADMIN_TOKEN = 'client-test-token';

test.before(async () => {
  h = await startHarness();
  node = await h.node();
  admin = await h.node({ ADMIN_TOKEN });
});
test.after.always(() => h?.close());

/** A logger that keeps what it is told. */
function recordingLogger() {
  const lines: { details: Record<string, unknown>; message: string }[] = [];
  const logger: ClientLogger = { warn: (details, message) => void lines.push({ details: details as Record<string, unknown>, message }) };
  return { logger, lines };
}

async function stubServer(handler: RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

test('proxyUrl: the public URL for players; an invalid id is a typed error, not a URL', (t) => {
  const client = createTubecacheClient({ baseUrl: 'http://tubecache.internal:8080/', publicUrl: 'https://videos.example.com/' });
  t.is(client.proxyUrl('dQw4w9WgXcQ'), 'https://videos.example.com/proxy/dQw4w9WgXcQ');
  t.is(createTubecacheClient({ baseUrl: 'http://127.0.0.1:8080' }).proxyUrl('-abc_DEF123'), 'http://127.0.0.1:8080/proxy/-abc_DEF123');
  for (const id of ['short', 'dQw4w9WgXcQ/../x', '../etc/pass', '']) {
    const error = t.throws(() => client.proxyUrl(id), { instanceOf: TubecacheClientError });
    t.is(error?.code, 'INVALID_VIDEO_ID', id);
  }
  const numeric = t.throws(() => client.proxyUrl(12345678901 as unknown as string), { instanceOf: TubecacheClientError });
  t.is(numeric?.code, 'INVALID_VIDEO_ID', 'a number is not an id, even with 11 digits');
  t.throws(() => createTubecacheClient({ baseUrl: 'http://x', prefetchQueueDepth: -1 }), { instanceOf: RangeError });
});

test('prefetch: 202 from a real node, which then warms the head', async (t) => {
  const client = createTubecacheClient({ baseUrl: node.url });
  const id = h.video(fixture, { reportDuration: 30 });
  t.deepEqual(await client.prefetch(id), { ok: true, id });
  await eventually(() => h.origin.statsFor(id).mediaBytes > 0, 10_000, 'the node to fetch the head');
  t.is(h.origin.statsFor(id).resolves, 1);
});

test('prefetch never rejects: a bad id, a refused connection, a timeout and an error status all resolve { ok: false } and are logged', async (t) => {
  const hanging = await stubServer(() => {
    /* never answers */
  });
  const busy = await stubServer((_req, res) => {
    res.writeHead(503, { 'Content-Type': 'application/json', 'Retry-After': '2' });
    res.end(JSON.stringify({ error: { code: 'RESOLVE_QUEUE_FULL', message: 'too many videos resolving at once' } }));
  });
  const closed = await stubServer(() => {});
  await closed.close();
  try {
    const cases = [
      { baseUrl: node.url, id: 'not-an-id', code: 'INVALID_VIDEO_ID' },
      { baseUrl: closed.url, id: 'dQw4w9WgXcQ', code: 'UNREACHABLE' },
      { baseUrl: hanging.url, id: 'dQw4w9WgXcQ', code: 'TIMEOUT' },
      { baseUrl: busy.url, id: 'dQw4w9WgXcQ', code: 'HTTP_ERROR' },
    ] as const;
    for (const { baseUrl, id, code } of cases) {
      const { logger, lines } = recordingLogger();
      const client = createTubecacheClient({ baseUrl, timeoutMs: 300, logger });
      const result = await client.prefetch(id);
      t.false(result.ok, code);
      if (result.ok) continue;
      t.true(result.error instanceof TubecacheClientError, code);
      t.is(result.error.code, code);
      t.is(lines.length, 1, `${code} is logged once`);
      t.like(lines[0], { message: 'prefetch failed', details: { videoId: id, code } });
      if (code === 'HTTP_ERROR') {
        t.is(result.error.status, 503);
        t.is(result.error.serverCode, 'RESOLVE_QUEUE_FULL');
        t.is(result.error.retryAfter, 2);
      }
    }
  } finally {
    await Promise.all([hanging.close(), busy.close()]);
  }
});

test('prefetchMany asks once per distinct id, in order; prefetchUpcoming asks for the first PREFETCH_QUEUE_DEPTH; both pass a format on', async (t) => {
  const asked: string[] = [];
  const stub = await stubServer((req, res) => {
    asked.push(req.url ?? '');
    res.writeHead(202, { 'Content-Type': 'application/json' }).end('{}');
  });
  try {
    const client = createTubecacheClient({ baseUrl: stub.url, prefetchQueueDepth: 2, logger: recordingLogger().logger });
    const [a, b, c] = ['aaaaaaaaaaa', 'bbbbbbbbbbb', 'ccccccccccc'];
    const results = await client.prefetchMany([a, b, a, 'bad id', c]);
    t.deepEqual(
      results.map((result) => [result.id, result.ok]),
      [[a, true], [b, true], ['bad id', false], [c, true]],
    );
    t.deepEqual(asked.sort(), [`/prefetch/${a}`, `/prefetch/${b}`, `/prefetch/${c}`]);

    asked.length = 0;
    t.deepEqual((await client.prefetchUpcoming([c, b, a])).map((result) => result.id), [c, b]);
    t.deepEqual(asked.sort(), [`/prefetch/${b}`, `/prefetch/${c}`]);
    t.deepEqual(await client.prefetchUpcoming([a, b], 0), [], 'depth 0 turns queue prefetch off');

    asked.length = 0;
    await client.prefetchMany([a, b], { format: 'audio' });
    await client.prefetchUpcoming([c, b, a], 1, { format: 'audio' });
    t.deepEqual(asked.sort(), [`/prefetch/${a}?format=audio`, `/prefetch/${b}?format=audio`, `/prefetch/${c}?format=audio`], 'the format is passed on');
  } finally {
    await stub.close();
  }
});

test('stat: the admin API view of a video; typed errors without a token, with a wrong one, and for a video not cached', async (t) => {
  const id = h.video(fixture, { reportDuration: 30 });
  const client = createTubecacheClient({ baseUrl: admin.url, adminToken: ADMIN_TOKEN });
  t.true((await client.prefetch(id)).ok);
  await eventually(async () => (await admin.service.store.getManifest(admin.service.cache.video(id as never), 256 * 1024))?.persisted.length === 3, 10_000, 'the head in S3');

  const stat = await client.stat(id);
  t.is(stat.id, id);
  t.is(stat.s3.length, 1);
  t.like(stat.s3[0], { id, size: fixture.length, duration: 30, persistedSlices: 3 });
  t.is(stat.memory?.manifest.size, fixture.length);

  const noToken = await t.throwsAsync(createTubecacheClient({ baseUrl: admin.url }).stat(id), { instanceOf: TubecacheClientError });
  t.is(noToken?.code, 'NO_ADMIN_TOKEN');
  const wrong = await t.throwsAsync(createTubecacheClient({ baseUrl: admin.url, adminToken: 'wrong' }).stat(id), { instanceOf: TubecacheClientError });
  t.like(wrong, { code: 'HTTP_ERROR', status: 403, serverCode: 'FORBIDDEN' });
  const notCached = await t.throwsAsync(client.stat(h.video()), { instanceOf: TubecacheClientError });
  t.like(notCached, { code: 'HTTP_ERROR', status: 404, serverCode: 'NOT_FOUND' });
  const invalid = await t.throwsAsync(client.stat('nope'), { instanceOf: TubecacheClientError });
  t.is(invalid?.code, 'INVALID_VIDEO_ID');
});

test('format: proxyUrl, prefetch and stat name the format; a badly spelled one is a typed error and nothing is sent', async (t) => {
  const audio = readFileSync(new URL('../fixtures/audio.m4a', import.meta.url));
  const id = h.video(fixture, { formats: { '140/bestaudio[ext=m4a]/bestaudio': { bytes: audio, contentType: 'audio/mp4', formatId: '140', ext: 'm4a' } } });
  const client = createTubecacheClient({ baseUrl: admin.url, adminToken: ADMIN_TOKEN, logger: recordingLogger().logger });
  t.is(client.proxyUrl(id, { format: 'audio' }), `${admin.url}/proxy/${id}?format=audio`);
  t.is(client.proxyUrl(id, {}), `${admin.url}/proxy/${id}`, 'no format: the server default');
  const played = await fetch(client.proxyUrl(id, { format: 'audio' }));
  t.is(sha256(Buffer.from(await played.arrayBuffer())), sha256(audio), 'the URL plays the audio, exactly');

  t.deepEqual(await client.prefetch(id, { format: 'audio' }), { ok: true, id });
  await eventually(async () => (await admin.service.store.getManifest(admin.service.cache.video(id as never, 'audio' as never), 256 * 1024))?.persisted.length === 1, 10_000, 'the audio head in the store');
  const stat = await client.stat(id, { format: 'audio' });
  t.deepEqual(stat.s3.map((entry) => entry.format), ['audio'], 'only the asked format');
  t.like(stat.s3[0], { size: audio.length, contentType: 'audio/mp4' });
  t.is(stat.memory?.format, 'audio');
  t.is(stat.memory?.manifest.size, audio.length);

  for (const format of ['Audio', '../x', '', 'a'.repeat(33)]) {
    t.is(t.throws(() => client.proxyUrl(id, { format }), { instanceOf: TubecacheClientError })?.code, 'INVALID_FORMAT', format);
    const refused = await client.prefetch(id, { format });
    t.is(refused.ok ? undefined : refused.error.code, 'INVALID_FORMAT', format);
  }
  const unknown = await client.prefetch(id, { format: 'flac' });
  t.like(unknown.ok ? undefined : unknown.error, { code: 'HTTP_ERROR', status: 400, serverCode: 'UNKNOWN_FORMAT' });
  const unknownStat = await t.throwsAsync(client.stat(id, { format: 'flac' }), { instanceOf: TubecacheClientError });
  t.like(unknownStat, { status: 400, serverCode: 'UNKNOWN_FORMAT' });
});
