import type { Context } from 'koa';
import { TubeError } from '../errors.js';
import { Limiter } from '../limiter.js';
import { parseVideoId } from '../origin/video-id.js';
import type { AppServices } from './services.js';

/**
 * `POST /prefetch/:id`: 202 only when the prefetch holds a place in a bounded
 * queue and will run; a full queue is 429 with Retry-After. A video already
 * queued or running answers 202 without taking a second place.
 */
export function prefetchRoute(service: AppServices) {
  const { cache, config, metrics, logger } = service;
  // A prefetch starts with a yt-dlp run: running more at once than there are
  // yt-dlp slots would only move the wait into the resolver's queue, which a
  // burst could overflow after its callers were told 202.
  const queue = new Limiter(config.YTDLP_CONCURRENCY, config.PREFETCH_BACKLOG);
  const pending = new Set<string>();
  return (ctx: Context & { params: Record<string, string> }) => {
    const video = cache.video(parseVideoId(ctx.params.id ?? ''));
    if (pending.has(video.id)) {
      metrics.prefetches.inc({ outcome: 'joined' });
    } else {
      const run = queue.tryRun(() => cache.prefetch(video));
      if (!run) {
        metrics.prefetches.inc({ outcome: 'refused' });
        throw new TubeError('PREFETCH_QUEUE_FULL', `${queue.active} running, ${queue.queued} waiting`);
      }
      metrics.prefetches.inc({ outcome: 'accepted' });
      pending.add(video.id);
      run
        .catch((error: unknown) => logger.warn({ videoId: video.id, err: error }, 'prefetch failed'))
        .finally(() => pending.delete(video.id));
    }
    ctx.status = 202;
    ctx.body = { id: video.id, status: 'accepted' };
  };
}
