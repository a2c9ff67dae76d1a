import { existsSync } from 'node:fs';
import test from 'ava';
import { fixture, fixtureSha, startHarness, type Harness } from '../helpers/harness.js';

const YTDLP = '/usr/bin/yt-dlp';
const SLICE = 256 * 1024;
let h: Harness;

test.before(async () => {
  if (existsSync(YTDLP)) h = await startHarness();
});
test.after.always(() => h?.close());

test("Debian's real yt-dlp resolves a local page through its generic extractor, and tubecache serves exact bytes", async (t) => {
  if (!h) return t.log(`skipped: ${YTDLP} is not installed (apt-get install yt-dlp)`);
  const node = await h.node({ YTDLP_PATH: YTDLP, RESOLVE_TIMEOUT: '60s' });
  const id = h.video();
  const reply = await node.get(`/proxy/${id}`);
  t.is(reply.status, 200, reply.body.subarray(0, 300).toString());
  t.is(reply.headers['x-cache-status'], 'MISS');
  t.is(reply.sha256, fixtureSha);
  t.is(h.origin.statsFor(id).resolves, 1);

  // It reports no size or duration here: size came from the origin's answer,
  // duration from the MP4 header, and the head is 10 s of the 30 s fixture.
  const manifest = node.service.memory.getManifest(node.service.cache.video(id as never))!;
  t.is(manifest.size, fixture.length);
  t.is(Math.round(manifest.duration ?? 0), 30);
  t.is(manifest.headSlices, Math.ceil(fixture.length / 3 / SLICE));
  const again = await node.get(`/proxy/${id}`);
  t.is(again.headers['x-cache-status'], 'HIT');
  t.is(again.sha256, fixtureSha);
});
