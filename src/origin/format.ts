import { TubeError } from '../errors.js';
import type { VideoId } from './video-id.js';

/**
 * Named formats: FORMATS maps short names (`video`, `audio`) to yt-dlp format
 * selectors. Requests name a format (`?format=audio`); object keys use the name,
 * so an operator reads `videos/{id}/audio/…`. Imports nothing but the error
 * table, so `tubecache/client` can check names without loading the server.
 */

declare const named: unique symbol;
/** A format name that passed the edge check against the configured names; only these reach the tiers. */
export type FormatName = string & { readonly [named]: true };

const FORMAT_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;
/** The spelling rule, for messages. */
export const FORMAT_NAME_RULE = FORMAT_NAME.source;

/** Whether `text` is spelled as a format name may be (it may still not be configured). */
export const isFormatName = (text: string): text is FormatName => FORMAT_NAME.test(text);

/** A video in one yt-dlp format selector: what yt-dlp is asked for (and what its answers are kept by). */
export interface Resolvable {
  readonly id: VideoId;
  readonly selector: string;
}

/** The configured formats, in the order given; the first is the default (a request without `?format=`). */
export interface Formats {
  readonly default: FormatName;
  readonly selectors: ReadonlyMap<FormatName, string>;
}

/**
 * Parses `name=selector,name=selector`; throws an Error saying what is wrong.
 * A selector cannot hold a comma: to yt-dlp a comma asks for several files, and
 * tubecache serves one file per format.
 */
export function parseFormats(raw: string): Formats {
  const selectors = new Map<FormatName, string>();
  for (const entry of raw.split(',').map((part) => part.trim())) {
    const eq = entry.indexOf('=');
    const name = entry.slice(0, Math.max(0, eq)).trim();
    const selector = entry.slice(eq + 1).trim();
    if (eq < 0 || selector === '') throw new Error(`expected name=selector pairs separated by commas, got ${JSON.stringify(entry)}`);
    if (!isFormatName(name)) throw new Error(`format name ${JSON.stringify(name)} must match ${FORMAT_NAME_RULE}`);
    if (selectors.has(name)) throw new Error(`format name "${name}" is given twice`);
    if (/\s/.test(selector)) throw new Error(`the selector of "${name}" contains white space`);
    selectors.set(name, selector);
  }
  const first = selectors.keys().next();
  if (first.done) throw new Error('names no format');
  return { default: first.value, selectors };
}

/** `video=18/b,audio=140`: the formats as FORMATS spells them, for logs and doctor. */
export const describeFormats = (formats: Formats): string => [...formats.selectors].map(([name, selector]) => `${name}=${selector}`).join(',');

/**
 * The format a request asks for with its `format` query parameter (absent: the
 * default). An unknown name is UNKNOWN_FORMAT, listing the configured names; a
 * repeated parameter is BAD_REQUEST (which one would be meant?).
 */
export function parseFormatParam(formats: Formats, value: string | string[] | undefined): FormatName {
  if (value === undefined) return formats.default;
  if (Array.isArray(value)) throw new TubeError('BAD_REQUEST', 'the format parameter is given more than once');
  if (isFormatName(value) && formats.selectors.has(value)) return value;
  throw new TubeError('UNKNOWN_FORMAT', `${JSON.stringify(value.slice(0, 64))}; known formats: ${[...formats.selectors.keys()].join(', ')}`);
}
