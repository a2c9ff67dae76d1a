import type { ServerResponse } from 'node:http';
import type { Context } from 'koa';
import type { TieredCache } from '../cache/tiered-cache.js';
import type { Metrics } from '../metrics.js';
import { parseFormatParam, type Formats } from '../origin/format.js';
import { parseVideoId } from '../origin/video-id.js';
import { answerFor, contentRange, manifestHeaders } from './proxy-answer.js';
import { startBeforeSize } from './range.js';

/** GET and HEAD /proxy/:id[?format=name] — the video in one format, whole or one range, from the cheapest tier that has it. */
export function proxyRoute(cache: TieredCache, metrics: Metrics, formats: Formats) {
  return async (ctx: Context & { params: Record<string, string> }) => {
    const started = performance.now();
    const video = cache.video(parseVideoId(ctx.params.id ?? ''), parseFormatParam(formats, ctx.query.format));
    // Where a GET will read from: the store is asked for that slice beside the manifest.
    const { manifest, tier } = await cache.manifest(video, ctx.method === 'GET' ? startBeforeSize(ctx.get('range') || undefined) : undefined);
    cache.touch(video);

    const headers = manifestHeaders(manifest);
    for (let i = 0; i < headers.length; i += 2) ctx.set(headers[i]!, headers[i + 1]!);

    const answer = answerFor(manifest, ctx.req.headers);
    if (answer.kind === 'not-modified') {
      ctx.status = 304;
      return;
    }
    if (answer.kind === 'unsatisfiable') {
      ctx.status = 416;
      ctx.set('Content-Range', `bytes */${manifest.size}`);
      ctx.body = { error: { code: 'RANGE_NOT_SATISFIABLE', message: `range not satisfiable for ${manifest.size} bytes` } };
      return;
    }
    const { start, end } = answer;
    const status = cache.plan(manifest, tier, start, end);
    metrics.requests.inc({ status, format: video.format });
    ctx.state.cacheStatus = status;
    ctx.set('X-Cache-Status', status);
    ctx.status = answer.partial ? 206 : 200;
    if (answer.partial) ctx.set('Content-Range', contentRange(start, end, manifest.size));
    ctx.set('Content-Length', String(end - start + 1));
    if (ctx.method === 'HEAD') return;

    // The first bytes are awaited before the headers go out, so an upstream that fails
    // before its first byte is still a clean 502 rather than a broken 200.
    const client = new AbortController();
    // Only a client that leaves mid-body stops the reads behind it; a finished response has nothing to stop.
    const leave = () => {
      if (!ctx.res.writableFinished) client.abort(new Error('client gone'));
    };
    ctx.res.once('close', leave);
    const chunks = cache.read(video, manifest, start, end, client.signal);
    let first: Buffer | undefined;
    try {
      first = (await chunks.next()).value;
    } catch (error) {
      // A client that left before the first byte is not an error of ours.
      if (client.signal.aborted) {
        ctx.state.streamError = error;
        return;
      }
      ctx.remove('X-Cache-Status');
      throw error;
    }

    metrics.firstByteSeconds.observe({ status }, (performance.now() - started) / 1000);
    // Streamed by hand: koa would leave a response hanging if the body failed after the headers.
    ctx.respond = false;
    try {
      // Handed over, not kept: this frame lasts as long as the response, and a view named here would keep
      // its slice's Buffer alive (uncounted) after the budget has let the slice go.
      const sending = send(ctx.res, first, chunks);
      first = undefined;
      await sending;
    } catch (error) {
      // The client left, or the upstream failed after the headers: the response ends short, never with wrong bytes.
      ctx.state.streamError = error;
      ctx.res.destroy();
    } finally {
      await chunks.return(undefined);
    }
  };
}

/**
 * Writes chunks straight to the response, pulling the next one only once the
 * socket has taken the last (the socket, not tubecache, decides how fast slices
 * are read). No Readable or pipeline in between: they cost an AbortController,
 * a DOMException and a dozen listeners per response, a third of the CPU of a
 * 256 KiB memory hit.
 */
async function send(res: ServerResponse, first: Buffer | undefined, rest: AsyncGenerator<Buffer>): Promise<void> {
  // One local names the chunk being written, cleared before the next is awaited (as above).
  let chunk = first;
  first = undefined;
  while (chunk) {
    // Written, not only queued, before the next pull: that may release the slice, whose Buffer the budget then reuses.
    await written(res, chunk);
    chunk = undefined;
    if (res.destroyed) throw new Error('client gone');
    chunk = (await rest.next()).value;
  }
  res.end();
  // As a pipeline would: done when the last byte is handed to the socket (the request log counts them).
  if (!res.writableFinished) await until(res, 'finish');
}

/** Resolves once the socket has written `chunk` (its callback), or when the response closes first. */
const written = (res: ServerResponse, chunk: Buffer) =>
  new Promise<void>((resolve) => {
    const done = () => {
      res.off('close', done);
      resolve();
    };
    res.on('close', done);
    res.write(chunk, done);
  });

/** Resolves on `event`, or when the response closes first (the client left). */
const until = (res: ServerResponse, event: 'finish') =>
  new Promise<void>((resolve) => {
    const done = () => {
      res.off(event, done).off('close', done);
      resolve();
    };
    res.on(event, done).on('close', done);
  });
