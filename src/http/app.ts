import { randomUUID } from 'node:crypto';
import Router from '@koa/router';
import Koa, { type Context, type Next } from 'koa';
import type { Logger } from 'pino';
import type { MemoryTier } from '../cache/memory-tier.js';
import type { StoreTier } from '../cache/store-tier.js';
import type { TieredCache } from '../cache/tiered-cache.js';
import type { Config } from '../config.js';
import { TubeError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import type { Pruner } from '../ops/prune.js';
import type { Resolver } from '../origin/resolver.js';
import { parseVideoId } from '../origin/video-id.js';
import { proxyRoute } from './proxy.js';

export interface ReadinessCheck {
  ok: boolean;
  detail?: string;
}

/** What the HTTP apps use of a running service (src/service.ts builds it; http/ does not import it). */
export interface AppServices {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly memory: MemoryTier;
  readonly store: StoreTier;
  readonly cache: TieredCache;
  readonly resolver: Resolver;
  readonly pruner: Pruner;
  readiness(): Promise<Record<string, ReadinessCheck>>;
}

/** The public app: proxy, prefetch, health, readiness and metrics (and the admin API when it shares the port). */
export function createApp(service: AppServices, extraRoutes?: Router): Koa {
  const app = new Koa();
  app.proxy = true;
  app.silent = true;
  const router = new Router();
  const { cache, metrics } = service;

  const proxy = proxyRoute(cache, metrics);
  router.get('/proxy/:id', proxy);
  router.head('/proxy/:id', proxy);

  router.post('/prefetch/:id', (ctx) => {
    const video = cache.video(parseVideoId(ctx.params.id ?? ''));
    cache.prefetch(video).catch((error: unknown) => service.logger.warn({ videoId: video.id, err: error }, 'prefetch failed'));
    ctx.status = 202;
    ctx.body = { id: video.id, status: 'accepted' };
  });

  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });

  router.get('/readyz', async (ctx) => {
    const checks = await service.readiness();
    ctx.status = Object.values(checks).every((check) => check.ok) ? 200 : 503;
    ctx.body = { status: ctx.status === 200 ? 'ready' : 'not ready', checks };
  });

  router.get('/metrics', async (ctx) => {
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });

  app.use(requestLog(service.logger));
  app.use(errorBody(service.logger));
  if (extraRoutes) app.use(extraRoutes.routes());
  app.use(router.routes());
  app.use(router.allowedMethods());
  app.use((ctx) => {
    throw new TubeError('NOT_FOUND', `${ctx.method} ${ctx.path}`);
  });
  return app;
}

/** One JSON line per request: id, route, status, the tier that served it, bytes and time. */
export function requestLog(logger: Logger) {
  return async (ctx: Context, next: Next) => {
    const started = performance.now();
    const socket = ctx.req.socket;
    const written = socket.bytesWritten;
    const incoming = ctx.get('X-Request-Id');
    const reqId = /^[\w.-]{1,64}$/.test(incoming) ? incoming : randomUUID();
    ctx.set('X-Request-Id', reqId);
    ctx.state.log = logger.child({ reqId });
    // Logged when the response is over, so status, bytes and time are the final ones (koa writes after the middleware returns).
    ctx.res.once('close', () => {
      const streamError = ctx.state.streamError as Error | undefined;
      ctx.state.log.info(
        {
          method: ctx.method,
          url: ctx.url,
          status: ctx.status,
          cache: ctx.state.cacheStatus,
          bytes: socket.bytesWritten - written,
          ms: Math.round(performance.now() - started),
          ...(streamError ? { ended: streamError.message } : {}),
          ...(ctx.res.writableFinished ? {} : { aborted: true }),
        },
        'request',
      );
    });
    await next();
  };
}

/** Turns errors into `{ error: { code, message } }` with the table's status; 5xx bodies say no more than the table. */
export function errorBody(logger: Logger) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
    } catch (caught) {
      const error = caught instanceof TubeError ? caught : undefined;
      const status = error?.status ?? 500;
      // Expected failures are one line with their code; anything else keeps its stack.
      const log = ctx.state.log ?? logger;
      if (error) log[status >= 500 ? 'warn' : 'info']({ code: error.code, reason: error.message }, 'request failed');
      else log.error({ err: caught, code: 'INTERNAL' }, 'request failed');
      if (ctx.headerSent || !ctx.writable) return;
      // Headers set for a success (ETag, Content-Range…) do not belong on the error; a 401's WWW-Authenticate does.
      for (const name of Object.keys(ctx.response.headers)) if (name !== 'x-request-id' && name !== 'www-authenticate') ctx.remove(name);
      ctx.status = status;
      if (error?.retryAfter) ctx.set('Retry-After', String(error.retryAfter));
      ctx.body = { error: { code: error?.code ?? 'INTERNAL', message: error?.publicMessage ?? 'internal error' } };
    }
  };
}
