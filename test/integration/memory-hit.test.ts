/**
 * The memory-hit fast path (src/http/memory-hit.ts) answers exactly as the koa
 * route does: the same service is served twice, through the fast path (with a
 * koa that counts what falls through to it) and through koa alone, and every
 * answer — status, header set, body sha256, metrics and log line — is compared.
 */
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { pino } from 'pino';
import { memoryHitFirst } from '../../src/http/memory-hit.js';
import { fetchRaw, fixture, fixtureSha, sha256, startHarness, type Harness, type Node, type Reply } from '../helpers/harness.js';
import { rawRequest } from '../helpers/raw-http.js';

/** Differ between any two responses whatever the path. */
const PER_RESPONSE = new Set(['date']);
/** Prometheus series the two paths must move alike (the duration and first-byte histograms by their counts). */
const COUNTED = ['tubecache_requests_total', 'tubecache_served_bytes_total', 'tubecache_slice_reads_total', 'tubecache_request_duration_seconds_count', 'tubecache_first_byte_seconds_count'];

let h: Harness;
let node: Node;
let id: string;
let etag: string;
let fast: { url: string; fellThrough: string[] };
let koaOnly: { url: string };
const servers: Server[] = [];
const logLines: Record<string, unknown>[] = [];

const listen = async (listener: RequestListener) => {
  const server = createServer(listener);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
};

test.before(async () => {
  h = await startHarness();
  const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(JSON.parse(line)) });
  node = await h.node({}, undefined, logger);
  id = h.video();
  // The first GET fills memory (a MISS); the whole video is then a memory hit.
  const first = await node.get(`/proxy/${id}`);
  if (first.sha256 !== fixtureSha) throw new Error('the cold read returned other bytes');
  await node.service.cache.idle();
  etag = String(first.headers.etag);
  const koa = node.service.app.callback();
  const fellThrough: string[] = [];
  fast = { url: await listen(memoryHitFirst(node.service, (req, res) => (fellThrough.push(`${req.method} ${req.url}`), koa(req, res)))), fellThrough };
  koaOnly = { url: await listen(koa) };
});
test.after.always(async () => {
  for (const server of servers) server.closeAllConnections(), server.close();
  await h?.close();
});

async function counters(): Promise<Map<string, number>> {
  const text = await node.service.metrics.registry.metrics();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [series, value] = line.split(' ');
    if (series && COUNTED.some((name) => series.startsWith(name))) values.set(series, Number(value));
  }
  return values;
}

/** One request, with what it moved in the metrics and the log line it left. */
async function observe(url: string, method: string, headers: Record<string, string>) {
  const before = await counters();
  const lines = logLines.length;
  const reply = await fetchRaw(url, { method, headers });
  const after = await counters();
  const moved = [...after].filter(([series, value]) => value !== (before.get(series) ?? 0)).map(([series, value]) => `${series} +${value - (before.get(series) ?? 0)}`);
  const logged = logLines.slice(lines).filter((line) => line.msg === 'request').map(({ time, pid, hostname, ms, ...rest }) => rest);
  return { reply, moved, logged };
}

const headerSet = (reply: Reply) => Object.fromEntries(Object.entries(reply.headers).filter(([name]) => !PER_RESPONSE.has(name)));

/** The same request through both listeners gives the same answer; returns whether the fast path kept it. */
async function same(t: import('ava').ExecutionContext, method: string, headers: Record<string, string>, path = `/proxy/${id}`) {
  const asked = { 'X-Request-Id': `same-${Math.random().toString(36).slice(2)}`, ...headers };
  const fallen = fast.fellThrough.length;
  const viaFast = await observe(fast.url + path, method, asked);
  const kept = fast.fellThrough.length === fallen;
  const viaKoa = await observe(koaOnly.url + path, method, asked);
  t.is(viaFast.reply.status, viaKoa.reply.status, `${method} ${JSON.stringify(headers)}: status`);
  t.deepEqual(headerSet(viaFast.reply), headerSet(viaKoa.reply), `${method} ${JSON.stringify(headers)}: headers`);
  t.is(viaFast.reply.sha256, viaKoa.reply.sha256, `${method} ${JSON.stringify(headers)}: body`);
  t.deepEqual(viaFast.moved, viaKoa.moved, `${method} ${JSON.stringify(headers)}: metrics`);
  t.deepEqual(viaFast.logged, viaKoa.logged, `${method} ${JSON.stringify(headers)}: log line`);
  return { kept, reply: viaFast.reply, moved: viaFast.moved };
}

test.serial('whole and ranged memory hits: the fast path answers, byte and header identical to koa', async (t) => {
  const cases: [string, Record<string, string>, number, Buffer][] = [
    ['GET', {}, 200, fixture],
    ['GET', { Range: 'bytes=0-99' }, 206, fixture.subarray(0, 100)],
    // Across a slice boundary (SLICE_BYTES=256KiB in the harness).
    ['GET', { Range: 'bytes=200000-800000' }, 206, fixture.subarray(200000, 800001)],
    ['GET', { Range: 'bytes=-5000' }, 206, fixture.subarray(fixture.length - 5000)],
    ['GET', { Range: `bytes=1000-${10 ** 20}` }, 206, fixture.subarray(1000)],
    ['GET', { Range: 'bytes=0-1,5-9' }, 200, fixture],
    ['GET', { Range: 'bytes=100-199', 'If-Range': '"another-version"' }, 200, fixture],
  ];
  for (const [method, headers, status, expected] of cases) {
    const { kept, reply, moved } = await same(t, method, headers);
    t.true(kept, `${JSON.stringify(headers)} was answered by the fast path`);
    t.is(reply.status, status);
    t.is(reply.sha256, sha256(expected), `${JSON.stringify(headers)}: the bytes asked for`);
    t.is(reply.headers['x-cache-status'], 'HIT');
    t.true(moved.some((series) => series.startsWith('tubecache_requests_total{status="HIT"')), 'counted as a HIT');
  }
});

test.serial('HEAD and a matching If-Range are answered by the fast path too', async (t) => {
  for (const [method, headers] of [['HEAD', {}], ['HEAD', { Range: 'bytes=10-20' }], ['GET', { Range: 'bytes=10-20', 'If-Range': etag }]] as const) {
    const { kept, reply } = await same(t, method, headers);
    t.true(kept, `${method} ${JSON.stringify(headers)}`);
    t.is(reply.headers['x-cache-status'], 'HIT');
  }
});

test.serial('304, 416, a query and a Range past the end fall through to koa with the same answer', async (t) => {
  const cases: [Record<string, string>, number, string?][] = [
    [{ 'If-None-Match': etag }, 304],
    [{ 'If-None-Match': `"x", ${etag}` }, 304],
    [{ Range: `bytes=${fixture.length}-` }, 416],
    [{ Range: 'bytes=abc' }, 416],
    [{}, 200, `/proxy/${id}?format=${node.service.config.FORMATS.default}`],
    [{}, 400, `/proxy/${id}?format=a&format=b`],
  ];
  for (const [headers, status, path] of cases) {
    const { kept, reply } = await same(t, 'GET', headers, path);
    t.false(kept, `${path ?? ''} ${JSON.stringify(headers)} went to koa`);
    t.is(reply.status, status, `${path ?? ''} ${JSON.stringify(headers)}`);
  }
});

test.serial('odd spellings of /proxy/<id> are koa\'s refusals, never a fast-path hit', async (t) => {
  const spellings = [`/proxy/${id}/`, `/proxy//${id}`, `/Proxy/${id}`, `/PROXY/${id}`, `/proxy/./${id}`, `/proxy/%${id.charCodeAt(0).toString(16)}${id.slice(1)}`, `/proxy/${id};x`, `/proxy/${id}%00`, `/proxy/${id}#x`, `/proxy/${id}/../${id}`, `/%70roxy/${id}`, `//proxy/${id}`, `/proxy/${id.slice(1)}`, `/proxy/${id}x`];
  for (const target of spellings) {
    const fallen = fast.fellThrough.length;
    const [viaFast, viaKoa] = [await rawRequest(fast.url, 'GET', target), await rawRequest(koaOnly.url, 'GET', target)];
    t.is(fast.fellThrough.length, fallen + 1, `${target} went to koa`);
    t.true(viaFast.status === 400 || viaFast.status === 404, `${target}: ${viaFast.status}`);
    t.is(viaFast.status, viaKoa.status, target);
    t.is(viaFast.body, viaKoa.body, target);
  }
  for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
    const reply = await rawRequest(fast.url, method, `/proxy/${id}`);
    t.is(reply.status, 405, method);
  }
});

test.serial('a slice not in memory falls through: koa reads it from the store', async (t) => {
  const other = h.video(fixture.subarray(0, 600_000));
  const cold = await fetchRaw(`${fast.url}/proxy/${other}`);
  t.is(cold.headers['x-cache-status'], 'MISS');
  t.is(cold.sha256, sha256(fixture.subarray(0, 600_000)));
  t.true(fast.fellThrough.includes(`GET /proxy/${other}`));
});
