import { readFileSync } from 'node:fs';
import test from 'ava';
import { ObjectKeys } from '../../src/cache/keys.js';
import type { VideoId } from '../../src/origin/video-id.js';
import { eventually, fixture, fixtureSha, sha256, startHarness, type Harness } from '../helpers/harness.js';
import type { FormatStream } from '../helpers/origin.js';

/** Named formats (FORMATS, ?format=): each is its own cache entry, resolved with its own selector. */

const AUDIO_SELECTOR = '140/bestaudio[ext=m4a]/bestaudio';
const audio = readFileSync(new URL('../fixtures/audio.m4a', import.meta.url));
const audioSha = sha256(audio);
const audioStream: FormatStream = { bytes: audio, contentType: 'audio/mp4', formatId: '140', ext: 'm4a' };

let h: Harness;
test.before(async () => {
  h = await startHarness();
});
test.after.always(() => h?.close());

/** A video whose audio stream is test/fixtures/audio.m4a. */
const withAudio = (streams: Record<string, FormatStream> = { [AUDIO_SELECTOR]: audioStream }) => h.video(fixture, { formats: streams });
const selectorsAsked = (id: string) => h.origin.resolveCalls.filter((call) => call.id === id).map((call) => call.argv[call.argv.indexOf('-f') + 1]);
const keys = new ObjectKeys('');
const storedManifest = async (node: Awaited<ReturnType<Harness['node']>>, id: string, format: string) =>
  JSON.parse((await node.service.store.getText(keys.manifest({ id: id as VideoId, format }))) ?? 'null') as { selector?: string; etag?: string; persisted?: number[] } | null;

test('?format=audio: the audio bytes exactly, its own MISS then HIT, its own ETag, yt-dlp asked with the audio selector', async (t) => {
  const node = await h.node();
  const id = withAudio();

  const miss = await node.get(`/proxy/${id}?format=audio`);
  t.is(miss.status, 200);
  t.is(miss.headers['x-cache-status'], 'MISS');
  t.is(miss.sha256, audioSha);
  t.is(miss.headers['content-type'], 'audio/mp4');
  t.is(miss.headers['content-length'], String(audio.length));
  const hit = await node.get(`/proxy/${id}?format=audio`);
  t.is(hit.headers['x-cache-status'], 'HIT');
  t.is(hit.sha256, audioSha);
  t.is(hit.headers.etag, miss.headers.etag);
  t.deepEqual(selectorsAsked(id), [AUDIO_SELECTOR], 'one yt-dlp run, with the audio selector');

  // The video of the same id is another entry: its own MISS, bytes and ETag.
  const video = await node.get(`/proxy/${id}`);
  t.is(video.headers['x-cache-status'], 'MISS', 'the cached audio is not the video');
  t.is(video.sha256, fixtureSha);
  t.not(video.headers.etag, miss.headers.etag);
  t.deepEqual(selectorsAsked(id), [AUDIO_SELECTOR, '18/b']);
  const named = await node.get(`/proxy/${id}?format=video`);
  t.is(named.headers['x-cache-status'], 'HIT', 'format=video is the default format, the same entry');
  t.is(named.headers.etag, video.headers.etag);
  t.is(named.sha256, fixtureSha);

  const range = await node.get(`/proxy/${id}?format=audio`, { Range: 'bytes=1000-1999' });
  t.is(range.status, 206);
  t.is(range.sha256, sha256(audio.subarray(1000, 2000)));
  const head = await node.head(`/proxy/${id}?format=audio`);
  t.is(head.headers.etag, miss.headers.etag);
  t.is(head.headers['content-length'], String(audio.length));

  // Keys use the name; the manifest records the selector; the request metric is labelled with the name.
  await node.service.cache.idle();
  const manifest = await storedManifest(node, id, 'audio');
  t.is(manifest?.selector, AUDIO_SELECTOR);
  t.is(manifest?.etag, miss.headers.etag);
  t.is((await storedManifest(node, id, 'video'))?.selector, '18/b');
  const metrics = (await node.get('/metrics')).body.toString();
  t.regex(metrics, /tubecache_requests_total\{status="MISS",format="audio"\} [1-9]/);
  t.regex(metrics, /tubecache_served_bytes_total\{tier="memory",format="audio"\} [1-9]/);

  // Another node reads the audio's head from the store.
  const other = await h.node();
  const stored = await other.get(`/proxy/${id}?format=audio`, { Range: 'bytes=0-99' });
  t.is(stored.headers['x-cache-status'], h.store.hit);
  t.is(stored.sha256, sha256(audio.subarray(0, 100)));
  t.is(stored.headers.etag, miss.headers.etag);
});

test('an unknown format is a 400 listing the names; a repeated format parameter is a 400; nothing runs', async (t) => {
  const node = await h.node();
  const id = withAudio();
  for (const path of [`/proxy/${id}?format=flac`, `/proxy/${id}?format=`, `/proxy/${id}?format=Audio`, `/proxy/${id}?format=..%2Fx`]) {
    const reply = await node.get(path);
    t.is(reply.status, 400, path);
    const { error } = JSON.parse(reply.body.toString()) as { error: { code: string; message: string } };
    t.is(error.code, 'UNKNOWN_FORMAT', path);
    t.regex(error.message, /known formats: video, audio$/, path);
  }
  t.is((await node.head(`/proxy/${id}?format=flac`)).status, 400);
  const prefetch = await node.post(`/prefetch/${id}?format=flac`);
  t.is(prefetch.status, 400);
  t.is(JSON.parse(prefetch.body.toString()).error.code, 'UNKNOWN_FORMAT');
  for (const path of [`/proxy/${id}?format=audio&format=audio`, `/proxy/${id}?format=audio&format=video`]) {
    const reply = await node.get(path);
    t.is(reply.status, 400, path);
    t.is(JSON.parse(reply.body.toString()).error.code, 'BAD_REQUEST', path);
    t.regex(JSON.parse(reply.body.toString()).error.message, /format parameter is given more than once/);
  }
  t.is((await node.post(`/prefetch/${id}?format=audio&format=video`)).status, 400);
  t.is(h.origin.statsFor(id).resolves, 0, 'no yt-dlp run for a refused request');
});

test('POST /prefetch/:id?format=audio warms the audio head into the store, apart from the video', async (t) => {
  const node = await h.node();
  const id = withAudio();
  const accepted = await node.post(`/prefetch/${id}?format=audio`);
  t.is(accepted.status, 202);
  t.deepEqual(JSON.parse(accepted.body.toString()), { id, format: 'audio', status: 'accepted' });
  const video = await node.post(`/prefetch/${id}`);
  t.deepEqual(JSON.parse(video.body.toString()), { id, format: 'video', status: 'accepted' });
  await eventually(async () => ((await storedManifest(node, id, 'audio'))?.persisted?.length ?? 0) > 0, 20_000, 'the audio head in the store');
  await eventually(async () => ((await storedManifest(node, id, 'video'))?.persisted?.length ?? 0) > 0, 20_000, 'the video head in the store');
  t.deepEqual(selectorsAsked(id).sort(), ['18/b', AUDIO_SELECTOR].sort());

  const other = await h.node();
  const reply = await other.get(`/proxy/${id}?format=audio`, { Range: 'bytes=0-999' });
  t.is(reply.headers['x-cache-status'], h.store.hit);
  t.is(reply.sha256, sha256(audio.subarray(0, 1000)));
});

test('a changed selector for a name is a new version: a miss with the new bytes and ETag, never the old ones', async (t) => {
  const other = Buffer.from(audio.subarray(0, 100_000));
  const id = withAudio({ [AUDIO_SELECTOR]: audioStream, bestaudio: { ...audioStream, bytes: other, formatId: '251', ext: 'webm' } });
  const before = await h.node();
  const first = await before.get(`/proxy/${id}?format=audio`);
  t.is(first.sha256, audioSha);
  await before.service.cache.idle();
  t.is((await storedManifest(before, id, 'audio'))?.selector, AUDIO_SELECTOR);
  await before.close();

  const after = await h.node({ FORMATS: 'video=18/b,audio=bestaudio' });
  const changed = await after.get(`/proxy/${id}?format=audio`);
  t.is(changed.headers['x-cache-status'], 'MISS', 'the stored entry of the old selector is not served');
  t.is(changed.sha256, sha256(other));
  t.not(changed.headers.etag, first.headers.etag);
  t.deepEqual(selectorsAsked(id), [AUDIO_SELECTOR, 'bestaudio']);
  await after.service.cache.idle();
  const replaced = await storedManifest(after, id, 'audio');
  t.is(replaced?.selector, 'bestaudio', 'the new version replaced the manifest');
  t.is(replaced?.etag, changed.headers.etag);

  // A third node with the new selector reads the new version from the store, bytes exact.
  const third = await h.node({ FORMATS: 'video=18/b,audio=bestaudio' });
  const stored = await third.get(`/proxy/${id}?format=audio`, { Range: 'bytes=0-999' });
  t.is(stored.headers['x-cache-status'], h.store.hit);
  t.is(stored.sha256, sha256(other.subarray(0, 1000)));
});

test('admin API: ?format= shows and deletes one format; without it, every format', async (t) => {
  const token = 'formats-admin-token';
  const node = await h.node({ ADMIN_TOKEN: token });
  const id = withAudio();
  const admin = (method: string, path: string) => fetch(`${node.url}${path}`, { method, headers: { Authorization: `Bearer ${token}` } });
  t.is((await node.get(`/proxy/${id}?format=audio`)).sha256, audioSha);
  t.is((await node.get(`/proxy/${id}`)).sha256, fixtureSha);
  await node.service.cache.idle();

  const every = (await (await admin('GET', `/admin/videos/${id}`)).json()) as { s3: { format: string }[]; memory: { format: string } };
  t.deepEqual(every.s3.map((entry) => entry.format), ['audio', 'video']);
  t.is(every.memory.format, 'video', 'memory of the default format');
  const one = (await (await admin('GET', `/admin/videos/${id}?format=audio`)).json()) as { s3: { format: string; size: number }[]; memory: { format: string } };
  t.deepEqual(one.s3.map((entry) => [entry.format, entry.size]), [['audio', audio.length]]);
  t.is(one.memory.format, 'audio');
  const unknown = await admin('GET', `/admin/videos/${id}?format=flac`);
  t.is(unknown.status, 400);
  t.is(((await unknown.json()) as { error: { code: string } }).error.code, 'UNKNOWN_FORMAT');

  t.is((await admin('DELETE', `/admin/videos/${id}?format=audio`)).status, 200);
  const left = (await (await admin('GET', `/admin/videos/${id}`)).json()) as { s3: { format: string }[] };
  t.deepEqual(left.s3.map((entry) => entry.format), ['video'], 'only the audio went');
  t.is((await node.get(`/proxy/${id}?format=audio`)).headers['x-cache-status'], 'MISS', 'the audio is gone from memory too');
  t.is((await node.get(`/proxy/${id}`, { Range: 'bytes=0-99' })).headers['x-cache-status'], 'HIT', 'the video stayed');
  await node.service.cache.idle();
  t.is((await admin('DELETE', `/admin/videos/${id}`)).status, 200);
  t.is((await admin('GET', `/admin/videos/${id}`)).status, 404, 'every format gone');
});
