import { TubeError } from '../errors.js';

declare const validated: unique symbol;
/** A YouTube video id that passed the edge check; only these reach the tiers and yt-dlp. */
export type VideoId = string & { readonly [validated]: true };

const VIDEO_ID = /^[A-Za-z0-9_-]{11}$/;

export const isVideoId = (text: string): text is VideoId => VIDEO_ID.test(text);

export function parseVideoId(text: string): VideoId {
  if (!isVideoId(text)) throw new TubeError('INVALID_VIDEO_ID', JSON.stringify(text.slice(0, 64)));
  return text;
}
