import type { IncomingHttpHeaders } from 'node:http';
import type { Manifest } from '../cache/manifest.js';
import { parseRange } from './range.js';

/**
 * How a proxy GET or HEAD is answered once its manifest is known. The koa
 * route and the memory-hit fast path (memory-hit.ts) both decide here, so
 * they cannot answer the same request differently.
 */
export type ProxyAnswer = { kind: 'not-modified' } | { kind: 'unsatisfiable' } | { kind: 'bytes'; partial: boolean; start: number; end: number };

const NOT_MODIFIED: ProxyAnswer = { kind: 'not-modified' };
const UNSATISFIABLE: ProxyAnswer = { kind: 'unsatisfiable' };

export function answerFor(manifest: Manifest, headers: IncomingHttpHeaders): ProxyAnswer {
  const ifNoneMatch = headers['if-none-match'];
  if (ifNoneMatch?.split(',').some((tag) => tag.trim() === manifest.etag)) return NOT_MODIFIED;
  const ifRange = headers['if-range'];
  // An If-Range that names another version asks for the whole current one.
  const range = ifRange && ifRange !== manifest.etag ? undefined : headers.range;
  const asked = parseRange(range, manifest.size);
  if (asked.kind === 'unsatisfiable') return UNSATISFIABLE;
  return asked.kind === 'partial' ? { kind: 'bytes', partial: true, start: asked.start, end: asked.end } : { kind: 'bytes', partial: false, start: 0, end: manifest.size - 1 };
}

const headerLists = new WeakMap<Manifest, readonly string[]>();

/** The headers every answer about `manifest` carries, as name, value, name, value… (built once per manifest). */
export function manifestHeaders(manifest: Manifest): readonly string[] {
  let list = headerLists.get(manifest);
  if (!list) {
    // The bytes behind an ETag never change, so shared caches (the nginx edge) may keep them.
    list = ['Accept-Ranges', 'bytes', 'ETag', manifest.etag, 'Content-Type', manifest.contentType, 'Cache-Control', 'public, max-age=86400'];
    headerLists.set(manifest, list);
  }
  return list;
}

export const contentRange = (start: number, end: number, size: number) => `bytes ${start}-${end}/${size}`;
