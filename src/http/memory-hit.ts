import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { CacheStatus } from '../cache/tiered-cache.js';
import { isVideoId } from '../origin/video-id.js';
import { answerFor, contentRange, manifestHeaders } from './proxy-answer.js';
import { logWhenOver, requestId } from './request-log.js';
import { targetPath } from './routing.js';
import type { AppServices } from './services.js';

const PREFIX = '/proxy/';
const HIT: CacheStatus = 'HIT';

/**
 * The public listener: GET and HEAD /proxy/<id> whose every byte is in memory
 * are answered here, before koa, with the same path check, Range parser,
 * headers, metrics and log line as the koa route (src/http/proxy.ts); every
 * other request — another path or spelling, a query, a 304 or 416, a slice not
 * in memory — goes to `koa` untouched. Koa's per-request context, middleware
 * promises, AbortController and async generator cost more CPU than sending a
 * 256 KiB slice.
 */
export function memoryHitFirst(service: AppServices, koa: RequestListener): RequestListener {
  const { cache, memory, metrics, logger } = service;
  const defaultFormat = service.config.FORMATS.default;
  const requests = metrics.requests.labels({ status: HIT, format: defaultFormat });
  const firstByte = metrics.firstByteSeconds.labels({ status: HIT });
  const duration = metrics.requestSeconds.labels({ route: 'proxy', status: HIT });
  const logging = () => logger.isLevelEnabled('info');

  return (req: IncomingMessage, res: ServerResponse) => {
    const started = performance.now();
    const url = req.url ?? '';
    const id = url.slice(PREFIX.length);
    // A query (?format=…) is koa's: its parsing of repeated or odd parameters is the one the route checks.
    if ((req.method !== 'GET' && req.method !== 'HEAD') || !url.startsWith(PREFIX) || !isVideoId(id) || !targetPath(url).canonical) return koa(req, res);
    const video = cache.video(id, defaultFormat);
    const manifest = memory.getManifest(video);
    if (!manifest) return koa(req, res);
    const answer = answerFor(manifest, req.headers);
    if (answer.kind !== 'bytes') return koa(req, res);
    const head = req.method === 'HEAD';
    const held = cache.fromMemory(video, manifest, answer.start, answer.end, !head);
    if (!held) return koa(req, res);
    // 'close' comes after the socket wrote the last view, or when the client left: the slices may go then.
    res.once('close', held.release);
    const views = held.views;

    cache.touch(video);
    requests.inc();
    res.once('close', () => duration.observe((performance.now() - started) / 1000));
    const reqId = requestId(req.headers['x-request-id'] as string | undefined);
    if (logging()) logWhenOver(logger.child({ reqId }), req, res, () => ({ status: res.statusCode, cache: HIT, streamError: undefined }));
    const headers = ['X-Request-Id', reqId, ...manifestHeaders(manifest), 'X-Cache-Status', HIT];
    if (answer.partial) headers.push('Content-Range', contentRange(answer.start, answer.end, manifest.size));
    headers.push('Content-Length', String(answer.end - answer.start + 1));
    res.writeHead(answer.partial ? 206 : 200, headers);
    if (head) return void res.end();
    firstByte.observe((performance.now() - started) / 1000);
    send(res, views, 0);
  };
}

/**
 * Writes the views from `at` on, the next only once the socket took the last
 * (a slow client holds at most one slice beyond what it read), corked so the
 * head and a run of views leave in one write; `end` uncorks.
 */
function send(res: ServerResponse, views: Buffer[], at: number): void {
  res.cork();
  for (; at < views.length - 1; at++) {
    if (!res.write(views[at]!)) {
      const next = at + 1;
      res.once('drain', () => send(res, views, next));
      return void res.uncork();
    }
  }
  res.end(views[at]);
}
