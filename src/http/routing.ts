import Router, { type RouterContext } from '@koa/router';
import type { Context, Next } from 'koa';
import { TubeError } from '../errors.js';

/**
 * How every path is read, on every listener: one spelling per route. The raw
 * request target must already be canonical, so the router, the admin hand-off
 * and any proxy in front see the same string; routers match case-sensitively
 * and strictly (a trailing slash is another path).
 */

/** Slash-separated segments of unreserved characters; no empty segment, no "." or "..", no %-escape, ";", "#" or NUL. */
const CANONICAL = /^(?:\/(?!\.\.?(?:\/|$))[\w.~-]+)+$/;
/** The only paths that end in "/": the root and the admin page. */
const SLASH_ENDED = new Set(['/', '/admin/']);

/** The path of a request target (its part before `?`), and whether it is canonical. */
export function targetPath(target: string): { path: string; canonical: boolean } {
  const query = target.indexOf('?');
  const path = query < 0 ? target : target.slice(0, query);
  return { path, canonical: SLASH_ENDED.has(path) || CANONICAL.test(path) };
}

/** Refuses (400) a request target that is not canonical, before any routing. Absolute-form and `*` targets are refused too. */
export async function canonicalPath(ctx: Context, next: Next): Promise<void> {
  const { path, canonical } = targetPath(ctx.req.url ?? '');
  if (!canonical) throw new TubeError('BAD_REQUEST', `path is not canonical: ${JSON.stringify(path.slice(0, 100))}`);
  await next();
}

/** A router that matches paths one way only. */
export const strictRouter = (prefix?: string): Router => new Router({ sensitive: true, strict: true, ...(prefix ? { prefix } : {}) });

/** The router's routes; nothing falls through: a path known under other methods is 405 with `Allow`, any other 404. */
export function routesOrRefuse(router: Router) {
  const routes = router.routes();
  return (ctx: Context) => routes(ctx as RouterContext, async () => refuse(ctx as RouterContext));
}

function refuse(ctx: RouterContext): never {
  const allowed = new Set((ctx.matched ?? []).flatMap((layer) => layer.methods));
  if (allowed.size === 0) throw new TubeError('NOT_FOUND', `${ctx.method} ${ctx.path}`);
  ctx.set('Allow', [...allowed].join(', '));
  throw new TubeError('METHOD_NOT_ALLOWED', `${ctx.method} ${ctx.path}`);
}
