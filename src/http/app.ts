import Koa, { type Context, type Next } from 'koa';
import type { Logger } from 'pino';
import { TubeError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { prefetchRoute } from './prefetch.js';
import { proxyRoute } from './proxy.js';
import { logWhenOver, requestId } from './request-log.js';
import { requestMetrics } from './request-metrics.js';
import { canonicalPath, routesOrRefuse, strictRouter } from './routing.js';
import type { AppServices } from './services.js';

/** Seconds a load balancer is asked to wait before asking /readyz again: the store and yt-dlp are re-checked on every call. */
const READY_RETRY_AFTER = 5;

/** A handler that answers every request under its first path segment itself, its bearer check first. */
type Guarded = (ctx: Context) => Promise<void>;

/**
 * The public app: proxy, prefetch, health, readiness and metrics. `admin`, when
 * the admin API shares the port, is handed every request whose (canonical)
 * first segment is `admin`, and answers it whole: its routes are not in this
 * router, so no spelling reaches them except through its bearer check. `peer`
 * (PEER_URL), the same for `peer`.
 */
export function createApp(service: AppServices, guarded: { admin?: Guarded; peer?: Guarded } = {}): Koa {
  const app = listenerApp(service.logger, service.metrics);
  const router = strictRouter();
  const { cache, metrics } = service;

  const proxy = proxyRoute(cache, metrics, service.config.FORMATS);
  router.get('/proxy/:id', proxy);
  router.head('/proxy/:id', proxy);

  router.post('/prefetch/:id', prefetchRoute(service));

  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });

  router.get('/readyz', async (ctx) => {
    const checks = await service.readiness();
    ctx.status = Object.values(checks).every((check) => check.ok) ? 200 : 503;
    if (ctx.status === 503) ctx.set('Retry-After', String(READY_RETRY_AFTER));
    ctx.body = { status: ctx.status === 200 ? 'ready' : 'not ready', checks };
  });

  router.get('/metrics', async (ctx) => {
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });

  const { admin, peer } = guarded;
  if (admin || peer) {
    app.use((ctx, next) => {
      const first = ctx.path.split('/')[1];
      const handler = first === 'admin' ? admin : first === 'peer' ? peer : undefined;
      return handler ? handler(ctx) : next();
    });
  }
  app.use(routesOrRefuse(router));
  return app;
}

/** What every listener does before its routes: the request log and duration histogram, JSON error bodies, and the refusal of non-canonical paths. */
export function listenerApp(logger: Logger, metrics?: Metrics): Koa {
  const app = new Koa();
  app.proxy = true;
  app.silent = true;
  app.use(requestLog(logger));
  if (metrics) app.use(requestMetrics(metrics));
  app.use(errorBody(logger));
  app.use(canonicalPath);
  return app;
}

/** One JSON line per request: id, route, status, the tier that served it, bytes and time. */
function requestLog(logger: Logger) {
  return async (ctx: Context, next: Next) => {
    const reqId = requestId(ctx.get('X-Request-Id'));
    ctx.set('X-Request-Id', reqId);
    ctx.state.log = logger.child({ reqId });
    // koa writes after the middleware returns: status and cache status are read when the response is over.
    logWhenOver(ctx.state.log, ctx.req, ctx.res, () => ({ status: ctx.status, cache: ctx.state.cacheStatus, streamError: ctx.state.streamError }));
    await next();
  };
}

const KEPT_ON_ERROR = new Set(['x-request-id', 'www-authenticate', 'allow']);

/** Turns errors into `{ error: { code, message } }` with the table's status; 5xx bodies say no more than the table. */
function errorBody(logger: Logger) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
    } catch (caught) {
      const expected = caught instanceof TubeError;
      const error = expected ? caught : new TubeError('INTERNAL', undefined, { cause: caught });
      // Expected failures are one line with their code; anything else keeps its stack.
      const log = ctx.state.log ?? logger;
      if (expected) log[error.status >= 500 ? 'warn' : 'info']({ code: error.code, reason: error.message }, 'request failed');
      else log.error({ err: caught, code: error.code }, 'request failed');
      if (ctx.headerSent || !ctx.writable) return;
      // Headers set for a success (ETag, Content-Range…) do not belong on the error; a 401's WWW-Authenticate and a 405's Allow do.
      for (const name of Object.keys(ctx.response.headers)) if (!KEPT_ON_ERROR.has(name)) ctx.remove(name);
      ctx.status = error.status;
      if (error.retryAfter) ctx.set('Retry-After', String(error.retryAfter));
      ctx.body = { error: { code: error.code, message: error.publicMessage } };
    }
  };
}
