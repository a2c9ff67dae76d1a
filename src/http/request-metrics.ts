import type { Context, Next } from 'koa';
import type { Metrics } from '../metrics.js';

/** Route classes for the duration histogram: a fixed set, so a path (or a video id in it) never becomes a label. */
const ROUTES = new Set(['proxy', 'prefetch', 'admin', 'peer', 'healthz', 'readyz', 'metrics']);

/** Observes each request's duration, until the response is over (koa writes after the middleware returns). */
export function requestMetrics(metrics: Metrics) {
  return async (ctx: Context, next: Next) => {
    const stop = metrics.requestSeconds.startTimer();
    ctx.res.once('close', () => {
      const first = ctx.path.split('/')[1] ?? '';
      stop({ route: ROUTES.has(first) ? first : 'other', status: (ctx.state.cacheStatus as string | undefined) ?? 'none' });
    });
    await next();
  };
}
