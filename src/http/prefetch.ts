import type { Context } from 'koa';
import { TubeError } from '../errors.js';
import { Limiter } from '../limiter.js';
import { parseFormatParam } from '../origin/format.js';
import { parseVideoId } from '../origin/video-id.js';
import type { AppServices } from './services.js';

/**
 * `POST /prefetch/:id[?format=name]`: 202 only when the prefetch holds a place in a bounded
 * queue and will run; a full queue is 429 with Retry-After. A video already
 * queued or running (in that format) answers 202 without taking a second place.
 */
export function prefetchRoute(service: AppServices) {
  const { cache, config, metrics, logger } = service;
  // A prefetch starts with a yt-dlp run: running more at once than there are
  // yt-dlp slots would only move the wait into the resolver's queue, which a
  // burst could overflow after its callers were told 202.
  const queue = new Limiter(config.YTDLP_CONCURRENCY, config.PREFETCH_BACKLOG);
  const pending = new Set<string>();
  return (ctx: Context & { params: Record<string, string> }) => {
    const video = cache.video(parseVideoId(ctx.params.id ?? ''), parseFormatParam(config.FORMATS, ctx.query.format));
    const key = `${video.id}/${video.format}`;
    if (pending.has(key)) {
      metrics.prefetches.inc({ outcome: 'joined' });
    } else {
      const run = queue.tryRun(() => cache.prefetch(video));
      if (!run) {
        metrics.prefetches.inc({ outcome: 'refused' });
        throw new TubeError('PREFETCH_QUEUE_FULL', `${queue.active} running, ${queue.queued} waiting`);
      }
      metrics.prefetches.inc({ outcome: 'accepted' });
      pending.add(key);
      run
        .catch((error: unknown) => logger.warn({ videoId: video.id, format: video.format, err: error }, 'prefetch failed'))
        .finally(() => pending.delete(key));
    }
    ctx.status = 202;
    ctx.body = { id: video.id, format: video.format, status: 'accepted' };
  };
}
