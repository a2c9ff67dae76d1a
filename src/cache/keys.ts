import { createHash } from 'node:crypto';
import type { VideoId } from '../origin/video-id.js';

/** A video as the cache knows it: the id and the format key derived from YTDLP_FORMAT. */
export interface VideoRef {
  readonly id: VideoId;
  readonly format: string;
}

/**
 * The format part of object keys. A simple selector ("18", "bestvideo") is kept
 * as is so operators can read it; anything else ("18/b[ext=mp4]") becomes a
 * short hash, because keys must be known before yt-dlp runs.
 */
export function formatKey(selector: string): string {
  if (/^[A-Za-z0-9._+-]{1,40}$/.test(selector)) return selector;
  return `f-${createHash('sha256').update(selector).digest('hex').slice(0, 12)}`;
}

/** Object keys, readable by operators: `{prefix}videos/{id}/{format}/manifest.json` and `…/slices/{index}`. */
export class ObjectKeys {
  constructor(readonly prefix: string) {}

  get videosRoot(): string {
    return `${this.prefix}videos/`;
  }
  video(video: VideoRef): string {
    return `${this.videosRoot}${video.id}/${video.format}/`;
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

  /** The video a key belongs to, and what the key is; undefined for keys outside the layout. */
  parse(key: string): { id: string; format: string; kind: 'manifest' | 'access' | 'slice'; index?: number } | undefined {
    if (!key.startsWith(this.videosRoot)) return undefined;
    const parts = key.slice(this.videosRoot.length).split('/');
    const [id, format, name, index] = parts;
    if (!id || !format || !name) return undefined;
    if (parts.length === 3 && name === 'manifest.json') return { id, format, kind: 'manifest' };
    if (parts.length === 3 && name === 'access') return { id, format, kind: 'access' };
    if (parts.length === 4 && name === 'slices' && index !== undefined && /^\d+$/.test(index)) return { id, format, kind: 'slice', index: Number(index) };
    return undefined;
  }
}
