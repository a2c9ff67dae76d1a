import type { Resolvable } from '../origin/format.js';
import type { VideoId } from '../origin/video-id.js';

/** A video as the store knows it: the id and the format's name (FORMATS), which keys are built from. */
export interface VideoRef {
  readonly id: VideoId;
  readonly format: string;
}

/** A video in one configured format, as the read path asks for it: keys from the name, yt-dlp's `-f` from the selector. */
export interface VideoRequest extends VideoRef, Resolvable {}

/** Object keys, readable by operators: `{prefix}videos/{id}/{format}/manifest.json` and `…/slices/{index}`. */
export class ObjectKeys {
  constructor(readonly prefix: string) {}

  get videosRoot(): string {
    return `${this.prefix}videos/`;
  }
  video(video: VideoRef): string {
    return `${this.videosRoot}${video.id}/${video.format}/`;
  }
  /** Every format of a video, or only `format`. */
  videoPrefix(id: VideoId, format?: string): string {
    return format ? this.video({ id, format }) : `${this.videosRoot}${id}/`;
  }
  manifest(video: VideoRef): string {
    return `${this.video(video)}manifest.json`;
  }
  access(video: VideoRef): string {
    return `${this.video(video)}access`;
  }
  slice(video: VideoRef, index: number): string {
    return `${this.video(video)}slices/${index}`;
  }
  /** A slice beyond the head uploaded for other nodes (src/cache/lease.ts); prune deletes it after SHARED_TTL. */
  shared(video: VideoRef, index: number): string {
    return `${this.video(video)}shared/${index}`;
  }

  /** Leases live apart from the videos, so that a listing of videos never meets them. */
  get leasesRoot(): string {
    return `${this.prefix}leases/`;
  }
  lease(video: VideoRef, index: number): string {
    return `${this.leasesRoot}${video.id}/${video.format}/${index}`;
  }

  /** The video a key belongs to, and what the key is; undefined for keys outside the layout. */
  parse(key: string): { id: string; format: string; kind: 'manifest' | 'access' | 'slice' | 'shared'; index?: number } | undefined {
    if (!key.startsWith(this.videosRoot)) return undefined;
    const parts = key.slice(this.videosRoot.length).split('/');
    const [id, format, name, index] = parts;
    if (!id || !format || !name) return undefined;
    if (parts.length === 3 && name === 'manifest.json') return { id, format, kind: 'manifest' };
    if (parts.length === 3 && name === 'access') return { id, format, kind: 'access' };
    if (parts.length === 4 && (name === 'slices' || name === 'shared') && index !== undefined && /^\d+$/.test(index)) {
      return { id, format, kind: name === 'slices' ? 'slice' : 'shared', index: Number(index) };
    }
    return undefined;
  }
}
