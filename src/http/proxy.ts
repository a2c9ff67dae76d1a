import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Context } from 'koa';
import type { TieredCache } from '../cache/tiered-cache.js';
import type { Metrics } from '../metrics.js';
import { parseVideoId } from '../origin/video-id.js';
import { parseRange } from './range.js';

/** Small reads keep backpressure tight: the socket, not tubecache, decides how fast slices are pulled. */
const STREAM_HIGH_WATER_MARK = 64 * 1024;

/** GET and HEAD /proxy/:id — the video, whole or one range, from the cheapest tier that has it. */
export function proxyRoute(cache: TieredCache, metrics: Metrics) {
  return async (ctx: Context & { params: Record<string, string> }) => {
    const video = cache.video(parseVideoId(ctx.params.id ?? ''));
    const { manifest, tier } = await cache.manifest(video);
    cache.touch(video);

    ctx.set('Accept-Ranges', 'bytes');
    ctx.set('ETag', manifest.etag);
    ctx.set('Content-Type', manifest.contentType);
    // The bytes behind an ETag never change, so shared caches (the nginx edge) may keep them.
    ctx.set('Cache-Control', 'public, max-age=86400');

    if (ctx.get('If-None-Match').split(',').some((tag) => tag.trim() === manifest.etag)) {
      ctx.status = 304;
      return;
    }
    const ifRange = ctx.get('If-Range');
    const range = ifRange && ifRange !== manifest.etag ? { kind: 'whole' as const } : parseRange(ctx.get('Range'), manifest.size);
    if (range.kind === 'unsatisfiable') {
      ctx.status = 416;
      ctx.set('Content-Range', `bytes */${manifest.size}`);
      ctx.body = { error: { code: 'RANGE_NOT_SATISFIABLE', message: `range not satisfiable for ${manifest.size} bytes` } };
      return;
    }
    const [start, end] = range.kind === 'partial' ? [range.start, range.end] : [0, manifest.size - 1];
    const status = cache.plan(manifest, tier, start, end);
    metrics.requests.inc({ status });
    ctx.state.cacheStatus = status;
    ctx.set('X-Cache-Status', status);
    ctx.status = range.kind === 'partial' ? 206 : 200;
    if (range.kind === 'partial') ctx.set('Content-Range', `bytes ${start}-${end}/${manifest.size}`);
    ctx.set('Content-Length', String(end - start + 1));
    if (ctx.method === 'HEAD') return;

    // The first bytes are awaited before the headers go out, so an upstream that fails
    // before its first byte is still a clean 502 rather than a broken 200.
    const client = new AbortController();
    const leave = () => client.abort(new Error('client gone'));
    ctx.res.once('close', leave);
    const chunks = cache.read(video, manifest, start, end, client.signal);
    let first: IteratorResult<Buffer>;
    try {
      first = await chunks.next();
    } catch (error) {
      ctx.remove('X-Cache-Status');
      throw error;
    }

    // Streamed by hand: koa would leave a response hanging if the body failed after the headers.
    ctx.respond = false;
    const body = Readable.from(prepend(first, chunks), { objectMode: false, highWaterMark: STREAM_HIGH_WATER_MARK });
    body.once('close', leave);
    try {
      await pipeline(body, ctx.res);
    } catch (error) {
      // The client left, or the upstream failed after the headers: the response ends short, never with wrong bytes.
      ctx.state.streamError = error;
    }
  };
}

async function* prepend(first: IteratorResult<Buffer>, rest: AsyncGenerator<Buffer>): AsyncGenerator<Buffer> {
  if (first.done) return;
  yield first.value;
  yield* rest;
}
