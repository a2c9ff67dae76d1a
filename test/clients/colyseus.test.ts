/**
 * The example DJ room (examples/colyseus-dj-room) on a real Colyseus server,
 * joined by a real colyseus.js client, prefetching through tubecache/client
 * into a tubecache node with real S3.
 */
import test from 'ava';
import { Client, type Room } from 'colyseus.js';
import { readFileSync } from 'node:fs';
import { TubecacheClient, type FormatOption, type PrefetchResult } from 'tubecache/client';
import { startDjServer, type DjServer } from '../../examples/colyseus-dj-room/server.js';
import {
  DjState,
  ROOM_ERROR,
  ROOM_NOW_PLAYING,
  ROOM_PLAY_NEXT,
  ROOM_PLAYLIST_ADD,
  type NowPlaying,
  type PlayNext,
  type PlaylistAdd,
  type RoomError,
} from '../../examples/colyseus-dj-room/room.js';
import { parseFormatParam, type FormatName } from '../../src/origin/format.js';
import { parseVideoId } from '../../src/origin/video-id.js';
import { eventually, fetchRaw, fixture, sha256, startHarness, type Harness, type Node } from '../helpers/harness.js';

const SLICE = 256 * 1024;

/** The client the room uses, recording which ids the room asked to prefetch (in call order, `id?format=name` for a format). */
class RecordingClient extends TubecacheClient {
  readonly asked: string[] = [];
  override prefetch(id: string, options: FormatOption = {}): Promise<PrefetchResult> {
    this.asked.push(options.format ? `${id}?format=${options.format}` : id);
    return super.prefetch(id, options);
  }
}

let h: Harness;
let node: Node;
let tubecache: RecordingClient;
let dj: DjServer;
const failures: object[] = [];

test.before(async () => {
  h = await startHarness();
  node = await h.node();
  tubecache = new RecordingClient({ baseUrl: node.url, prefetchQueueDepth: 2, logger: { warn: (details) => void failures.push(details) } });
  dj = await startDjServer({ tubecache });
});
test.after.always(async () => {
  await dj?.close();
  await h?.close();
});

/** A fresh room per test (create, not joinOrCreate), with every message the room sends collected by type. */
async function joinNewRoom(type = 'dj') {
  const room: Room<DjState> = await new Client(dj.url).create(type, {}, DjState);
  const nowPlaying: NowPlaying[] = [];
  const errors: RoomError[] = [];
  room.onMessage(ROOM_NOW_PLAYING, (message: NowPlaying) => nowPlaying.push(message));
  room.onMessage(ROOM_ERROR, (message: RoomError) => errors.push(message));
  return { room, nowPlaying, errors };
}

/** The S3 manifest once every head slice is persisted. */
async function headInS3(id: string, on = node, format?: FormatName) {
  const video = on.service.cache.video(parseVideoId(id), format);
  let headSlices = 0;
  await eventually(
    async () => {
      const manifest = await on.service.store.getManifest(video, SLICE);
      headSlices = manifest?.headSlices ?? 0;
      return manifest !== undefined && Array.from({ length: headSlices }, (_, index) => manifest.persisted.includes(index)).every(Boolean);
    },
    15_000,
    `the head of ${id} in S3`,
  );
  return headSlices;
}

test.serial('ROOM_PLAYLIST_ADD warms the head into S3 before any player asks; the first GET is a HIT without the origin', async (t) => {
  const { room, nowPlaying } = await joinNewRoom();
  const id = h.video(fixture, { reportDuration: 30 });
  room.send(ROOM_PLAYLIST_ADD, { id } satisfies PlaylistAdd);

  const headSlices = await headInS3(id);
  t.is(headSlices, Math.ceil(fixture.length / 3 / SLICE), "the harness's 10 s of 30");
  await eventually(() => room.state.playlist.length === 1, 5000, 'the playlist to sync');
  t.deepEqual([...room.state.playlist], [id]);
  t.deepEqual(nowPlaying, [], 'nothing played yet: no player has asked for the video');
  const warmed = h.origin.statsFor(id);
  t.is(warmed.resolves, 1);
  t.is(warmed.mediaBytes, headSlices * SLICE, 'the prefetch fetched the head and no more');

  room.send(ROOM_PLAY_NEXT);
  await eventually(() => nowPlaying.length === 1, 5000, 'ROOM_NOW_PLAYING');
  t.deepEqual(nowPlaying[0], { id, url: `${node.url}/proxy/${id}` });
  await eventually(() => room.state.nowPlaying === id, 5000, 'nowPlaying to sync');

  // The player's first request: the head range, from the cache alone.
  const head = `bytes=0-${headSlices * SLICE - 1}`;
  const first = await fetchRaw(nowPlaying[0]!.url, { headers: { Range: head } });
  t.is(first.status, 206);
  t.true(['HIT', h.store.hit].includes(String(first.headers['x-cache-status'])), `X-Cache-Status ${first.headers['x-cache-status']}`);
  t.is(first.sha256, sha256(fixture.subarray(0, headSlices * SLICE)));
  t.deepEqual(h.origin.statsFor(id), warmed, 'the origin saw no request for those bytes');

  // And the head is in S3, not only in that node's memory: a node that never saw the video serves it.
  const other = await h.node();
  const fromS3 = await other.get(`/proxy/${id}`, { Range: head });
  t.is(fromS3.headers['x-cache-status'], h.store.hit);
  t.is(fromS3.sha256, first.sha256);
  t.deepEqual(h.origin.statsFor(id), warmed);
  await room.leave();
});

test.serial('PREFETCH_QUEUE_DEPTH=2: only the next two queued videos are warmed; the third when the queue moves up', async (t) => {
  const { room, nowPlaying } = await joinNewRoom();
  const ids = [h.video(fixture, { reportDuration: 30 }), h.video(fixture, { reportDuration: 30 }), h.video(fixture, { reportDuration: 30 })];
  const [a, b, c] = ids as [string, string, string];
  for (const id of ids) room.send(ROOM_PLAYLIST_ADD, { id } satisfies PlaylistAdd);
  await eventually(() => room.state.playlist.length === 3, 5000, 'the playlist to sync');
  // The room asks for prefetches inside its message handler, so by the time the state shows all three, the asks are made.
  const asked = () => new Set(tubecache.asked.filter((id) => ids.includes(id)));
  t.deepEqual(asked(), new Set([a, b]));
  await headInS3(a);
  await headInS3(b);
  t.is(h.origin.statsFor(c).resolves, 0, 'no yt-dlp run for the third video');
  t.is(h.origin.statsFor(c).mediaRequests, 0);

  room.send(ROOM_PLAY_NEXT);
  await eventually(() => nowPlaying.length === 1, 5000, 'ROOM_NOW_PLAYING');
  t.is(nowPlaying[0]!.id, a);
  await headInS3(c);
  t.deepEqual(asked(), new Set([a, b, c]));
  t.is(h.origin.statsFor(c).resolves, 1);
  await room.leave();
});

test.serial("every player's ROOM_PLAY_NEXT { after } on `ended` advances the room once, and a late joiner gets the URL", async (t) => {
  const { room, nowPlaying } = await joinNewRoom();
  const [a, b, c] = [h.video(), h.video(), h.video()];
  for (const id of [a, b, c]) room.send(ROOM_PLAYLIST_ADD, { id } satisfies PlaylistAdd);
  room.send(ROOM_PLAY_NEXT);
  await eventually(() => nowPlaying.length === 1, 5000, 'the first video');
  const other = await new Client(dj.url).joinById<DjState>(room.roomId, {}, DjState);
  const otherNowPlaying: NowPlaying[] = [];
  other.onMessage(ROOM_NOW_PLAYING, (message: NowPlaying) => otherNowPlaying.push(message));
  await eventually(() => otherNowPlaying.length === 1, 5000, 'the late joiner to be told what plays');
  t.is(otherNowPlaying[0]!.id, a);

  // Both players reach the end of `a`; each then queues one more video, which shows (in the
  // synchronised state) that the room has handled that player's `ended` (one connection's
  // messages are handled in order).
  const [d, e] = [h.video(), h.video()];
  room.send(ROOM_PLAY_NEXT, { after: a } satisfies PlayNext);
  room.send(ROOM_PLAYLIST_ADD, { id: d } satisfies PlaylistAdd);
  other.send(ROOM_PLAY_NEXT, { after: a } satisfies PlayNext);
  other.send(ROOM_PLAYLIST_ADD, { id: e } satisfies PlaylistAdd);
  await eventually(() => room.state.playlist.includes(d) && room.state.playlist.includes(e), 5000, 'both players handled');
  t.is(room.state.nowPlaying, b, 'advanced once, not twice');
  t.deepEqual([...room.state.playlist].sort(), [c, d, e].sort());
  t.deepEqual(nowPlaying.map((message) => message.id), [a, b]);
  t.deepEqual(otherNowPlaying.map((message) => message.id), [a, b]);
  await other.leave();
  await room.leave();
});

test.serial('bad messages are refused in the room and never reach tubecache', async (t) => {
  const { room, errors } = await joinNewRoom();
  const askedBefore = tubecache.asked.length;
  for (const message of [{ id: 'short' }, { id: '../etc/pass' }, { id: 12345678901 }, undefined]) room.send(ROOM_PLAYLIST_ADD, message);
  room.send(ROOM_PLAY_NEXT);
  await eventually(() => errors.length === 5, 5000, 'five ROOM_ERRORs');
  t.deepEqual(
    errors.map((error) => error.code),
    ['INVALID_VIDEO_ID', 'INVALID_VIDEO_ID', 'INVALID_VIDEO_ID', 'INVALID_VIDEO_ID', 'PLAYLIST_EMPTY'],
  );
  t.is(tubecache.asked.length, askedBefore, 'the room asked tubecache for nothing');
  t.is(room.state.playlist.length, 0);
  t.deepEqual(failures, [], 'no prefetch failed in any test');
  await room.leave();
});

test.serial('the dj-audio room plays and prefetches the audio format: the audio head warmed into the store, the URL plays it exactly', async (t) => {
  const audio = readFileSync(new URL('../fixtures/audio.m4a', import.meta.url));
  const { room, nowPlaying } = await joinNewRoom('dj-audio');
  const id = h.video(fixture, { reportDuration: 30, formats: { '140/bestaudio[ext=m4a]/bestaudio': { bytes: audio, contentType: 'audio/mp4', formatId: '140', ext: 'm4a' } } });
  const asked = tubecache.asked.length;
  room.send(ROOM_PLAYLIST_ADD, { id } satisfies PlaylistAdd);
  const headSlices = await headInS3(id, node, parseFormatParam(node.service.config.FORMATS, 'audio'));
  t.true(headSlices >= 1);
  t.deepEqual(tubecache.asked.slice(asked), [`${id}?format=audio`]);
  t.deepEqual(h.origin.resolveCalls.filter((call) => call.id === id).map((call) => call.format), ['140/bestaudio[ext=m4a]/bestaudio'], 'yt-dlp asked for the audio only');

  room.send(ROOM_PLAY_NEXT);
  await eventually(() => nowPlaying.length === 1, 5000, 'ROOM_NOW_PLAYING');
  t.deepEqual(nowPlaying[0], { id, url: `${node.url}/proxy/${id}?format=audio`, format: 'audio' });
  const played = await fetchRaw(nowPlaying[0]!.url);
  t.is(played.status, 200);
  t.is(played.headers['content-type'], 'audio/mp4');
  t.is(played.sha256, sha256(audio));
  t.not(played.headers['x-cache-status'], 'MISS', 'the prefetched audio: its head from memory or the store');
  await room.leave();
});
