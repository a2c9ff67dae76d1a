/**
 * No spelling of a path gets past the admin token, and no odd spelling routes
 * anywhere. Every request is written raw on a socket (test/helpers/raw-http.ts),
 * so what the server parses is exactly the spelling in the table.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { parseVideoId } from '../../src/origin/video-id.js';
import { eventually, fixtureSha, freePort, startHarness, type Harness, type Node } from '../helpers/harness.js';
import { rawRequest, type RawReply } from '../helpers/raw-http.js';

const TOKEN = 'security-test-token-0123456789abcdef';
const METHODS = ['GET', 'POST', 'DELETE'] as const;
/** What a POST sends: a prune that would empty the bucket if it ever ran. */
const PRUNE_ALL = JSON.stringify({ ttl: '1s' });
const ARTIFACT = new URL('../artifacts/security-spellings.md', import.meta.url);

let h: Harness;
test.before(async () => {
  h = await startHarness();
});
test.after.always(() => h?.close());

/** Every way the issue (and a few more) spells `/admin/<rest>` without being `/admin/<rest>`. */
function spellings(rest: string): string[] {
  const [first = '', ...more] = rest.split('/');
  const tail = more.length ? `/${more.join('/')}` : '';
  const escapedFirstLetter = `%${first.charCodeAt(0).toString(16)}${first.slice(1)}`;
  return [
    `/ADMIN/${rest}`,
    `/Admin/${rest}`,
    `/admin/${first.toUpperCase()}${tail}`,
    `/admin//${rest}`,
    `/admin/./${rest}`,
    `/%61dmin/${rest}`,
    `/admin%2F${rest}`,
    `/admin/${rest}/`,
    `/admin/${rest};x`,
    `/admin/${rest}%00`,
    `//admin/${rest}`,
    `/admin/../admin/${rest}`,
    `/proxy/../admin/${rest}`,
    `/admin/${escapedFirstLetter}${tail}`,
    `/admin/${rest}%2F`,
    `/admin/${rest}#x`,
    `/admin/${rest}.`,
    `http://127.0.0.1/admin/${rest}`,
  ];
}

/** Key and size of every object in the node's bucket. */
async function bucketObjects(node: Node): Promise<string[]> {
  const objects: string[] = [];
  for await (const page of node.service.store.list('')) for (const object of page) objects.push(`${object.key} ${object.size}`);
  return objects.sort();
}

/** A video served through the node, stored in its bucket (head slices, manifest and access time). */
async function cachedVideo(t: ExecutionContext, node: Node): Promise<string> {
  const id = h.video();
  t.is((await node.get(`/proxy/${id}`)).sha256, fixtureSha, `served the fixture for ${id}`);
  await node.service.cache.idle();
  await eventually(async () => (await bucketObjects(node)).some((object) => object.includes(`${id}/`) && object.includes('access')), 10_000, `${id} stored with its access time`);
  return id;
}

/** Sends every spelling × method, with no token and with the right one, and returns the table of answers. */
async function probe(base: string, rests: string[]): Promise<{ method: string; target: string; token: boolean; reply: RawReply }[]> {
  const rows: { method: string; target: string; token: boolean; reply: RawReply }[] = [];
  for (const rest of rests) {
    for (const target of spellings(rest)) {
      for (const method of METHODS) {
        for (const token of [false, true]) {
          const head = [...(token ? [`Authorization: Bearer ${TOKEN}`] : []), ...(method === 'POST' ? ['Content-Type: application/json'] : [])];
          const reply = await rawRequest(base, method, target, { head, ...(method === 'POST' ? { body: PRUNE_ALL } : {}) });
          rows.push({ method, target, token, reply });
        }
      }
    }
  }
  return rows;
}

const table: string[] = [];
function record(listener: string, rows: { method: string; target: string; token: boolean; reply: RawReply }[]): void {
  for (const { method, target, token, reply } of rows) {
    const code = /"code":"(\w+)"/.exec(reply.body)?.[1] ?? '';
    table.push(`| ${listener} | ${method} | \`${target}\` | ${token ? 'yes' : 'no'} | ${reply.status} ${code} |`);
  }
}
test.after.always(() => {
  if (table.length === 0) return;
  mkdirSync(new URL('.', ARTIFACT), { recursive: true });
  writeFileSync(ARTIFACT, ['| listener | method | target | token | answer |', '| --- | --- | --- | --- | --- |', ...table, ''].join('\n'));
});

async function checkListener(t: ExecutionContext, listener: string, node: Node, base: string): Promise<void> {
  const [victim, bystander] = [await cachedVideo(t, node), await cachedVideo(t, node)];
  // Older than the prune's 1s ttl, so a prune that got through would delete them.
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const before = await bucketObjects(node);
  t.true(before.some((object) => object.includes(`${victim}/`)) && before.some((object) => object.includes(`${bystander}/`)));

  const rows = await probe(base, ['stats', 'videos', `videos/${victim}`, 'prune']);
  record(listener, rows);
  for (const { method, target, token, reply } of rows) {
    t.false(reply.status >= 200 && reply.status < 300, `${listener}: ${method} ${target} ${token ? 'with' : 'without'} the token answered ${reply.status}`);
  }
  t.deepEqual(await bucketObjects(node), before, `${listener}: no spelling changed the bucket`);
  t.truthy(node.service.memory.getManifest(node.service.cache.video(parseVideoId(victim))), `${listener}: no spelling dropped the video from memory`);

  // The controls: spelled right, with the token, the same requests do delete — so the probes above could have.
  const auth = [`Authorization: Bearer ${TOKEN}`];
  t.is((await rawRequest(base, 'GET', '/admin/stats', { head: auth })).status, 200);
  t.is((await rawRequest(base, 'GET', '/admin/stats')).status, 401);
  t.is((await rawRequest(base, 'DELETE', `/admin/videos/${victim}`, { head: auth })).status, 200);
  const afterDelete = await bucketObjects(node);
  t.false(afterDelete.some((object) => object.includes(`${victim}/`)), 'the right DELETE removed the victim');
  t.true(afterDelete.some((object) => object.includes(`${bystander}/`)), 'and only the victim');
  const pruned = await rawRequest(base, 'POST', '/admin/prune', { head: [...auth, 'Content-Type: application/json'], body: PRUNE_ALL });
  t.is(pruned.status, 200);
  t.false((await bucketObjects(node)).some((object) => object.includes(`${bystander}/`)), 'the right prune removed the rest');
}

test.serial('shared port (ADMIN_PORT=0): no spelling × method reaches an admin route without the token, none but the canonical one with it', async (t) => {
  const node = await h.node({ ADMIN_TOKEN: TOKEN }, await h.store.fresh());
  await checkListener(t, 'shared', node, node.url);
});

test.serial('ADMIN_PORT: the same table on the admin listener, and the main listener has no admin routes at all', async (t) => {
  const port = await freePort();
  const node = await h.node({ ADMIN_TOKEN: TOKEN, ADMIN_PORT: String(port) }, await h.store.fresh());
  const adminUrl = `http://127.0.0.1:${port}`;
  // The admin listener checks the token before anything else, whatever the path.
  t.is((await rawRequest(adminUrl, 'GET', '/proxy/abcdefghijk')).status, 401);
  t.is((await rawRequest(adminUrl, 'GET', '/ADMIN/stats')).status, 401);
  t.is((await rawRequest(node.url, 'GET', '/admin/stats', { head: [`Authorization: Bearer ${TOKEN}`] })).status, 404);
  await checkListener(t, 'admin port', node, adminUrl);
  const mainRows = await probe(node.url, ['stats', 'prune']);
  record('main (admin on its own port)', mainRows);
  for (const { method, target, reply } of mainRows) t.false(reply.status >= 200 && reply.status < 300, `main: ${method} ${target} answered ${reply.status}`);
});

test('/admin/ is reserved for the admin page: 401 without the token; /admin/ spelled otherwise is refused', async (t) => {
  const node = await h.node({ ADMIN_TOKEN: TOKEN });
  const page = await rawRequest(node.url, 'GET', '/admin/');
  t.is(page.status, 401);
  t.regex(page.headers['www-authenticate'] ?? '', /^Bearer/);
  for (const target of ['/ADMIN/', '//admin/', '/admin//', '/%61dmin/', '/admin/./']) t.false((await rawRequest(node.url, 'GET', target, { head: [`Authorization: Bearer ${TOKEN}`] })).status < 300, target);
});

test('public routes match one spelling only: odd spellings of /proxy, /prefetch, /healthz and /metrics do not route, and run nothing', async (t) => {
  const node = await h.node();
  const id = h.video();
  const escaped = `%${id.charCodeAt(0).toString(16)}${id.slice(1)}`;
  const cases: [string, string][] = [
    ...['GET', 'HEAD'].flatMap((method) =>
      [`/PROXY/${id}`, `/Proxy/${id}`, `/proxy//${id}`, `//proxy/${id}`, `/proxy/./${id}`, `/proxy/${id}/`, `/proxy/${id};x`, `/proxy/${escaped}`, `/proxy%2F${id}`, `/x/../proxy/${id}`].map(
        (target): [string, string] => [method, target],
      ),
    ),
    ...[`/PREFETCH/${id}`, `/prefetch//${id}`, `/prefetch/${id}/`, `/prefetch/./${id}`, `/prefetch/${escaped}`].map((target): [string, string] => ['POST', target]),
    ...['/HEALTHZ', '/healthz/', '//healthz', '/Metrics', '/metrics;x', '/readyz%00'].map((target): [string, string] => ['GET', target]),
  ];
  for (const [method, target] of cases) {
    const reply = await rawRequest(node.url, method, target);
    table.push(`| public | ${method} | \`${target}\` | no | ${reply.status} ${/"code":"(\w+)"/.exec(reply.body)?.[1] ?? ''} |`);
    t.true(reply.status === 400 || reply.status === 404, `${method} ${target} answered ${reply.status}`);
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.is(h.origin.statsFor(id).resolves, 0, 'no odd spelling ran yt-dlp');
  t.is(h.origin.statsFor(id).mediaRequests, 0);
  t.is((await rawRequest(node.url, 'GET', '/healthz')).status, 200, 'the canonical spelling routes');
  t.is((await node.get(`/proxy/${id}`)).sha256, fixtureSha, 'the canonical spelling serves the video');
});

test('the request log never holds the admin token, right or wrong, whatever the answer', async (t) => {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
  const node = await h.node({ ADMIN_TOKEN: TOKEN }, undefined, logger);
  const wrong = `${TOKEN}-wrong`;
  for (const token of [TOKEN, wrong]) {
    for (const [method, target] of [['GET', '/admin/stats'], ['GET', '/admin/nothing'], ['POST', '/admin/prune'], ['GET', '/ADMIN/stats'], ['GET', '/admin//stats'], ['GET', '/proxy/bad']]) {
      await rawRequest(node.url, method!, target!, { head: [`Authorization: Bearer ${token}`, 'Content-Type: text/plain'], ...(method === 'POST' ? { body: 'x' } : {}) });
    }
  }
  await eventually(() => lines.filter((line) => line.includes('"msg":"request"')).length >= 12, 5_000, 'the request lines');
  t.true(lines.some((line) => line.includes('/admin/stats')), 'the requests are logged');
  for (const line of lines) {
    t.false(line.includes(TOKEN), line);
    t.false(/authorization/i.test(line), line);
  }
});
