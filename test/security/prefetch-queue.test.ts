/**
 * Prefetch tells the truth: a 202 holds a place in a bounded queue and runs;
 * a full queue is 429 with Retry-After, counted; tubecache/client backs off.
 */
import test from 'ava';
import { createTubecacheClient } from '../../src/client.js';
import { parseVideoId } from '../../src/origin/video-id.js';
import { eventually, startHarness, type Harness, type Node } from '../helpers/harness.js';
import { rawRequest } from '../helpers/raw-http.js';

const CONCURRENCY = 2;
const BACKLOG = 3;
const BURST = 30;
/** Long enough that nothing running finishes while the burst is answered, even on a loaded machine. */
const SLOW_RESOLVE_MS = 10_000;

let h: Harness;
test.before(async () => {
  h = await startHarness();
});
test.after.always(() => h?.close());

async function outcomes(node: Node): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const { labels, value } of (await node.service.metrics.prefetches.get()).values) counts[String(labels.outcome)] = value;
  return counts;
}
const sent = async (node: Node) => Object.values(await outcomes(node)).reduce((n, v) => n + v, 0);

test('a burst of distinct prefetches: exactly YTDLP_CONCURRENCY + PREFETCH_BACKLOG are 202 and all of them run; the rest are 429 with Retry-After and run nothing', async (t) => {
  const node = await h.node({ YTDLP_CONCURRENCY: String(CONCURRENCY), PREFETCH_BACKLOG: String(BACKLOG) });

  // Fill the running slots with slow resolutions, so the burst meets a queue that cannot drain under it.
  const running = Array.from({ length: CONCURRENCY }, () => h.video());
  for (const id of running) {
    h.origin.setResolve(id, { kind: 'slow', ms: SLOW_RESOLVE_MS });
    t.is((await rawRequest(node.url, 'POST', `/prefetch/${id}`)).status, 202);
  }
  await eventually(() => running.every((id) => h.origin.statsFor(id).resolves === 1), 10_000, 'the slow prefetches to start yt-dlp');

  const burst = Array.from({ length: BURST }, () => h.video());
  const replies = await Promise.all(burst.map((id) => rawRequest(node.url, 'POST', `/prefetch/${id}`)));
  const accepted = burst.filter((_, i) => replies[i]!.status === 202);
  const refused = burst.filter((_, i) => replies[i]!.status === 429);
  t.is(accepted.length, BACKLOG, 'the backlog, and not one more, was accepted while the slots were busy');
  t.is(refused.length, BURST - BACKLOG, 'everything else was refused');
  for (const reply of replies.filter((r) => r.status === 429)) {
    t.is(reply.headers['retry-after'], '5');
    t.is(JSON.parse(reply.body).error.code, 'PREFETCH_QUEUE_FULL');
  }

  // Asking again for a video already queued joins it; a refused one is still refused.
  t.is((await rawRequest(node.url, 'POST', `/prefetch/${accepted[0]}`)).status, 202);
  t.is((await rawRequest(node.url, 'POST', `/prefetch/${refused[0]}`)).status, 429);
  t.deepEqual(await outcomes(node), { accepted: CONCURRENCY + BACKLOG, joined: 1, refused: BURST - BACKLOG + 1 });
  const metrics = await (await fetch(`${node.url}/metrics`)).text();
  t.regex(metrics, new RegExp(`tubecache_prefetch_requests_total\\{outcome="refused"\\} ${BURST - BACKLOG + 1}`));

  // Every 202 ran: one yt-dlp run each, and its head is in memory. No 429 ran anything.
  const promised = [...running, ...accepted];
  await eventually(
    () => promised.every((id) => node.service.memory.getManifest(node.service.cache.video(parseVideoId(id))) !== undefined),
    60_000,
    'every accepted prefetch to warm its video',
  );
  for (const id of promised) {
    t.is(h.origin.statsFor(id).resolves, 1, `${id} resolved once`);
    t.true(h.origin.statsFor(id).mediaBytes > 0, `${id} fetched its head`);
  }
  for (const id of refused) t.is(h.origin.statsFor(id).resolves, 0, `${id} was refused and ran nothing`);

  // Drained, the queue takes new work again.
  t.is((await rawRequest(node.url, 'POST', `/prefetch/${refused[1]}`)).status, 202);
});

test('tubecache/client: a 429 is a soft failure that is logged once, and no prefetch is sent before its Retry-After has passed', async (t) => {
  const node = await h.node({ YTDLP_CONCURRENCY: '1', PREFETCH_BACKLOG: '0' });
  const lines: object[] = [];
  const client = createTubecacheClient({ baseUrl: node.url, logger: { warn: (details) => void lines.push(details) } });
  const [first, second, third] = [h.video(), h.video(), h.video()];
  h.origin.setResolve(first, { kind: 'slow', ms: SLOW_RESOLVE_MS });

  t.deepEqual(await client.prefetch(first), { ok: true, id: first });
  const full = await client.prefetch(second);
  t.false(full.ok);
  if (!full.ok) {
    t.like(full.error, { code: 'HTTP_ERROR', status: 429, serverCode: 'PREFETCH_QUEUE_FULL', retryAfter: 5 });
  }
  t.is(lines.length, 1, 'the 429 is logged once');

  const asked = await sent(node);
  const paused = await client.prefetch(third);
  t.false(paused.ok);
  if (!paused.ok) {
    t.is(paused.error.code, 'BUSY');
    t.true(paused.error.retryAfter! >= 1 && paused.error.retryAfter! <= 5);
  }
  t.is(await sent(node), asked, 'BUSY sent nothing');
  t.is(lines.length, 1, 'and logged nothing');

  // Once Retry-After has passed, prefetches are sent again (accepted or refused, the node is asked).
  await new Promise((resolve) => setTimeout(resolve, 5_100));
  await client.prefetch(third);
  t.is(await sent(node), asked + 1);
});
