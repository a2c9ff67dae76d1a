import { Room, type Client } from '@colyseus/core';
import { ArraySchema, schema, type SchemaType } from '@colyseus/schema';
import { isVideoId, type FormatOption, type TubecacheClient } from 'tubecache/client';

/** Client → room: queue a video. */
export const ROOM_PLAYLIST_ADD = 'ROOM_PLAYLIST_ADD';
/** Client → room: start the next queued video (the DJ's "next", or every player's `ended`: see PlayNext). */
export const ROOM_PLAY_NEXT = 'ROOM_PLAY_NEXT';
/** Room → clients: a video starts; `url` goes into `<video src>` (`<audio src>` in an audio room). Also sent to whoever joins mid-video. */
export const ROOM_NOW_PLAYING = 'ROOM_NOW_PLAYING';
/** Room → one client: its message was refused. */
export const ROOM_ERROR = 'ROOM_ERROR';

export interface PlaylistAdd {
  id: string;
}
export interface PlayNext {
  /**
   * The id the sender saw playing. When it is no longer the one playing, the
   * room has already moved on and ignores the message — so every player may
   * send it on `ended` and the room advances once.
   */
  after?: string;
}
export interface NowPlaying {
  id: string;
  url: string;
  /** The room's tubecache format (`audio`), when it is not tubecache's default. */
  format?: string;
}
export interface RoomError {
  code: 'INVALID_VIDEO_ID' | 'PLAYLIST_FULL' | 'PLAYLIST_EMPTY';
  message: string;
}

/** A room's queue is bounded like everything else that grows on user input. */
export const MAX_PLAYLIST = 100;

/** Synchronised to every client: the queue (next first) and the id playing now ('' when idle). */
export const DjState = schema({ playlist: ['string'], nowPlaying: 'string' }, 'DjState');
export type DjState = SchemaType<typeof DjState>;

export interface DjRoomOptions {
  /** Given by the server in `define('dj', DjRoom, { tubecache })`; those options win over a joining client's. */
  tubecache: TubecacheClient;
  /**
   * One of tubecache's FORMATS names for everything the room plays and
   * prefetches: `audio` makes a music room (AAC audio, a fraction of the
   * video's bytes). Absent: tubecache's default format.
   */
  format?: string;
}

/**
 * A DJ room: anyone queues videos, `ROOM_PLAY_NEXT` starts the next one.
 * Every change of the queue asks tubecache to warm the first
 * PREFETCH_QUEUE_DEPTH queued videos, so that when one starts, every player's
 * first range requests are served from memory or S3 instead of waiting for
 * yt-dlp and the origin.
 */
export class DjRoom extends Room<DjState> {
  override maxClients = 64;
  override state = new DjState({ playlist: new ArraySchema<string>(), nowPlaying: '' });
  #tubecache!: TubecacheClient;
  #format: FormatOption = {};

  override onCreate(options: DjRoomOptions): void {
    this.#tubecache = options.tubecache;
    if (options.format !== undefined) this.#format = { format: options.format };
    this.onMessage(ROOM_PLAYLIST_ADD, (client, message: PlaylistAdd | undefined) => this.#add(client, message));
    this.onMessage(ROOM_PLAY_NEXT, (client, message: PlayNext | undefined) => this.#playNext(client, message));
  }

  override onJoin(client: Client): void {
    if (this.state.nowPlaying) client.send(ROOM_NOW_PLAYING, this.#nowPlaying(this.state.nowPlaying));
  }

  #add(client: Client, message: PlaylistAdd | undefined): void {
    const id = message?.id;
    if (typeof id !== 'string' || !isVideoId(id)) return refuse(client, 'INVALID_VIDEO_ID', 'id must be an 11-character YouTube video id');
    if (this.state.playlist.length >= MAX_PLAYLIST) return refuse(client, 'PLAYLIST_FULL', `the playlist holds at most ${MAX_PLAYLIST} videos`);
    this.state.playlist.push(id);
    this.#warmQueue();
  }

  #playNext(client: Client, message: PlayNext | undefined): void {
    if (typeof message?.after === 'string' && message.after !== this.state.nowPlaying) return;
    const id = this.state.playlist.shift();
    if (id === undefined) return refuse(client, 'PLAYLIST_EMPTY', 'nothing queued');
    this.state.nowPlaying = id;
    this.broadcast(ROOM_NOW_PLAYING, this.#nowPlaying(id));
    // The queue moved up: the video that just entered the window gets warmed.
    this.#warmQueue();
  }

  #nowPlaying(id: string): NowPlaying {
    return { id, url: this.#tubecache.proxyUrl(id, this.#format), ...this.#format };
  }

  /** Fire and forget: prefetch never rejects (failures are logged by the client), and a cold start is the worst case. */
  #warmQueue(): void {
    void this.#tubecache.prefetchUpcoming([...this.state.playlist], undefined, this.#format);
  }
}

function refuse(client: Client, code: RoomError['code'], message: string): void {
  client.send(ROOM_ERROR, { code, message } satisfies RoomError);
}
