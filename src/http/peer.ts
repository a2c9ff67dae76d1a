import { Readable } from 'node:stream';
import type { Context } from 'koa';
import { TubeError } from '../errors.js';
import { parseFormatParam } from '../origin/format.js';
import { parseVideoId } from '../origin/video-id.js';
import { checkBearer } from './bearer.js';
import { routesOrRefuse, strictRouter } from './routing.js';
import type { AppServices } from './services.js';

/**
 * What nodes on one bucket ask each other (PEER_URL, PEER_TOKEN): a slice
 * this node holds the lease for, laid out as a stored slice (digest after
 * every chunk, src/cache/slice-codec.ts) and sent as it arrives from the
 * origin, so that a waiting node serves it without waiting for the upload.
 * Like the admin API, one handler for every `/peer…` request: the bearer check
 * runs first, whatever the path; mounted only when PEER_TOKEN is set.
 */
export function peerApi(service: AppServices) {
  const router = strictRouter('/peer');
  const authorize = checkBearer(service.config.PEER_TOKEN, 'tubecache peer');
  const routes = routesOrRefuse(router);
  const { cache } = service;

  // ?etag= names the version the asking node has: another version's bytes are not the ones it waits for.
  router.get('/slices/:id/:format/:index', (ctx) => {
    const id = parseVideoId(ctx.params.id ?? '');
    const video = cache.video(id, parseFormatParam(service.config.FORMATS, ctx.params.format));
    const index = /^\d{1,9}$/.test(ctx.params.index ?? '') ? Number(ctx.params.index) : undefined;
    const etag = ctx.query.etag;
    if (index === undefined || typeof etag !== 'string' || etag === '') throw new TubeError('BAD_REQUEST', 'expected /peer/slices/<id>/<format>/<index>?etag=<manifest etag>');
    const ended = new AbortController();
    const slice = cache.peerSlice(video, index, etag, ended.signal);
    if (!slice) throw new TubeError('NOT_FOUND', `slice ${index} of ${id} (${video.format}) is neither in memory nor being fetched here`);
    ctx.res.once('close', () => {
      ended.abort();
      slice.release();
    });
    ctx.type = 'application/octet-stream';
    ctx.length = slice.length;
    ctx.body = Readable.from(slice.body);
  });

  return async (ctx: Context) => {
    authorize(ctx);
    await routes(ctx);
  };
}
