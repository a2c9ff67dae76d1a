/**
 * Every route refuses what it should: a wrong method is 405 with Allow, admin
 * bodies are bounded JSON (413 before reading, 415), Range clamps per RFC 9110,
 * 503s say when to retry, and an unexpected error says nothing of itself.
 */
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { pino } from 'pino';
import { listenerApp } from '../../src/http/app.js';
import { fixture, sha256, startHarness, type Harness, type Node } from '../helpers/harness.js';
import { rawRequest } from '../helpers/raw-http.js';

const TOKEN = 'methods-test-token-0123456789abcdef';
const AUTH = `Authorization: Bearer ${TOKEN}`;
const JSON_TYPE = 'Content-Type: application/json';

let h: Harness;
let node: Node;
test.before(async () => {
  h = await startHarness();
  node = await h.node({ ADMIN_TOKEN: TOKEN });
});
test.after.always(() => h?.close());

const allowOf = (header: string | undefined) => (header ?? '').split(/,\s*/).sort();

test('a known path with another method is 405 with Allow, on the public routes and the admin ones; an unknown path stays 404', async (t) => {
  const id = h.video();
  const cases: [method: string, target: string, allow: string[], head?: string[]][] = [
    ['GET', `/prefetch/${id}`, ['POST']],
    ['DELETE', `/proxy/${id}`, ['GET', 'HEAD']],
    ['POST', `/proxy/${id}`, ['GET', 'HEAD']],
    ['POST', '/healthz', ['GET', 'HEAD']],
    ['PUT', '/metrics', ['GET', 'HEAD']],
    ['GET', '/admin/prune', ['POST'], [AUTH]],
    ['POST', '/admin/stats', ['GET', 'HEAD'], [AUTH, JSON_TYPE]],
    ['PUT', `/admin/videos/${id}`, ['DELETE', 'GET', 'HEAD'], [AUTH]],
  ];
  for (const [method, target, allow, head] of cases) {
    const reply = await rawRequest(node.url, method, target, { head: head ?? [] });
    t.is(reply.status, 405, `${method} ${target}`);
    t.deepEqual(allowOf(reply.headers.allow), allow, `${method} ${target}`);
    t.is(JSON.parse(reply.body).error.code, 'METHOD_NOT_ALLOWED');
  }
  // The token comes first: without it an admin path says nothing about its methods.
  const unauthorised = await rawRequest(node.url, 'GET', '/admin/prune');
  t.is(unauthorised.status, 401);
  t.is(unauthorised.headers.allow, undefined);
  t.is((await rawRequest(node.url, 'GET', '/nothing-here')).status, 404);
  t.is((await rawRequest(node.url, 'GET', '/admin/nothing-here', { head: [AUTH] })).status, 404);
  t.is(h.origin.statsFor(id).resolves, 0, 'no refused request ran yt-dlp');
});

test('admin bodies: a Content-Length over 64 KiB is 413 before the body is sent; a chunked body over it is 413 too', async (t) => {
  const declared = await rawRequest(node.url, 'POST', '/admin/prune', { head: [AUTH, JSON_TYPE, `Content-Length: ${64 * 1024 + 1}`], body: 'never sent', holdBody: true });
  t.is(declared.status, 413);
  t.is(JSON.parse(declared.body).error.code, 'PAYLOAD_TOO_LARGE');
  const onDelete = await rawRequest(node.url, 'DELETE', `/admin/videos/${h.video()}`, { head: [AUTH, `Content-Length: ${10 * 2 ** 20}`], body: '', holdBody: true });
  t.is(onDelete.status, 413, 'every admin route, not only the ones that read a body');
  const huge = await rawRequest(node.url, 'POST', '/admin/prune', { head: [AUTH, JSON_TYPE, `Content-Length: ${2 ** 32}`], body: '', holdBody: true });
  t.is(huge.status, 413, 'a length past 32 bits is not read as a small one');

  const chunk = `{"dryRun":true,"pad":"${'x'.repeat(70 * 1024)}"}`;
  const chunked = await rawRequest(node.url, 'POST', '/admin/prune', {
    head: [AUTH, JSON_TYPE, 'Transfer-Encoding: chunked'],
    body: `${chunk.length.toString(16)}\r\n${chunk}\r\n0\r\n\r\n`,
  });
  t.is(chunked.status, 413);

  const small = await rawRequest(node.url, 'POST', '/admin/prune', { head: [AUTH, JSON_TYPE], body: JSON.stringify({ dryRun: true }) });
  t.is(small.status, 200, 'a body under the limit is read');
  t.true(JSON.parse(small.body).dryRun);
});

test('admin bodies: JSON only (415 otherwise); no body at all is an empty set of options', async (t) => {
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx']) {
    const reply = await rawRequest(node.url, 'POST', '/admin/prune', { head: [AUTH, `Content-Type: ${type}`], body: '{"dryRun":true}' });
    t.is(reply.status, 415, type);
    t.is(JSON.parse(reply.body).error.code, 'UNSUPPORTED_MEDIA_TYPE');
  }
  const untyped = await rawRequest(node.url, 'POST', '/admin/prune', { head: [AUTH], body: '{"dryRun":true}' });
  t.is(untyped.status, 415, 'a body without a Content-Type');
  const charset = await rawRequest(node.url, 'POST', '/admin/prune', { head: [AUTH, 'Content-Type: application/json; charset=utf-8'], body: '{"dryRun":true}' });
  t.is(charset.status, 200);
  const empty = await rawRequest(node.url, 'POST', '/admin/prune', { head: [AUTH, 'Content-Length: 0'] });
  t.is(empty.status, 200, 'Content-Length: 0 without a type');
  t.is(JSON.parse(empty.body).dryRun, false);
});

test('Range: a last-byte-pos beyond 2^53 is the last byte (206), over HTTP too', async (t) => {
  const id = h.video();
  const reply = await node.get(`/proxy/${id}`, { Range: 'bytes=1000-99999999999999999999' });
  t.is(reply.status, 206);
  t.is(reply.headers['content-range'], `bytes 1000-${fixture.length - 1}/${fixture.length}`);
  t.is(reply.sha256, sha256(fixture.subarray(1000)));
});

test('/readyz answers 503 with Retry-After when a check fails', async (t) => {
  const broken = await h.node({ YTDLP_PATH: '/nonexistent/yt-dlp' });
  const reply = await broken.get('/readyz');
  t.is(reply.status, 503);
  t.regex(String(reply.headers['retry-after']), /^\d+$/);
  t.false(JSON.parse(reply.body.toString()).checks.ytdlp.ok);
});

test('an unexpected error is 500 INTERNAL, with nothing of its message in the body and its stack in the log', async (t) => {
  const lines: string[] = [];
  const app = listenerApp(pino({ level: 'info' }, { write: (line: string) => void lines.push(line) }));
  app.use(() => {
    throw new Error('secret internals /etc/passwd');
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  try {
    const reply = await rawRequest(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'GET', '/boom');
    t.is(reply.status, 500);
    t.deepEqual(JSON.parse(reply.body), { error: { code: 'INTERNAL', message: 'internal error' } });
    t.true(lines.some((line) => line.includes('"code":"INTERNAL"') && line.includes('secret internals')), 'the log keeps the cause');
  } finally {
    server.close();
  }
});
