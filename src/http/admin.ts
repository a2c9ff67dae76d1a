import type Koa from 'koa';
import type { Context } from 'koa';
import type { Counter } from 'prom-client';
import { TubeError } from '../errors.js';
import { parseFormatParam, type FormatName } from '../origin/format.js';
import { parseVideoId } from '../origin/video-id.js';
import { removeVideos } from '../ops/delete.js';
import { listVideos, statVideo } from '../ops/inspect.js';
import type { PruneOptions } from '../ops/prune.js';
import { DEFAULT_CONCURRENCY } from '../ops/scan.js';
import { parseDuration, parseSize } from '../units.js';
import { adminPage } from './admin-page.js';
import { checkBearer } from './bearer.js';
import { listenerApp } from './app.js';
import { routesOrRefuse, strictRouter } from './routing.js';
import type { AppServices } from './services.js';

const PAGE_DEFAULT = 100;
const PAGE_MAX = 1000;
/** Admin bodies are a few JSON options; anything larger is refused before it is read. */
const BODY_MAX = 64 * 1024;
/** The admin web page's address: one of the two paths that end in "/" (src/http/routing.ts). */
const PAGE_PATH = '/admin/';

/**
 * The admin API as one handler: the bearer check runs first for every request
 * it is given, whatever the path, then the body limit, then its routes (404 or
 * 405 when none matches). Mounted only when ADMIN_TOKEN is set, either for
 * every request of its own listener or for `/admin…` on the public one.
 */
export function adminApi(service: AppServices) {
  const router = strictRouter('/admin');
  const { store, memory, cache } = service;
  const authorize = checkBearer(service.config.ADMIN_TOKEN, 'tubecache admin');
  const routes = routesOrRefuse(router);
  const page = adminPage(service.config);

  router.get('/', page.page);

  router.get('/videos', async (ctx) => {
    const limit = ctx.query.limit === undefined ? PAGE_DEFAULT : Number(ctx.query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > PAGE_MAX) throw new TubeError('BAD_REQUEST', `limit must be a whole number from 1 to ${PAGE_MAX}`);
    const cursor = typeof ctx.query.cursor === 'string' && ctx.query.cursor !== '' ? ctx.query.cursor : undefined;
    ctx.body = await listVideos(store, { cursor, limit, concurrency: DEFAULT_CONCURRENCY });
  });

  // Every stored format of the video, or with ?format= only that one; `memory` is the asked (else the default) format in this node's memory.
  router.get('/videos/:id', async (ctx) => {
    const id = parseVideoId(ctx.params.id ?? '');
    const format = askedFormat(ctx.query.format);
    const video = cache.video(id, format);
    const manifest = memory.getManifest(video);
    const inMemory = manifest && { format: video.format, manifest, slices: memory.slicesHeld(manifest) };
    const stored = await statVideo(store, id, format);
    if (!inMemory && stored.length === 0) throw new TubeError('NOT_FOUND', `video ${id}${format ? ` (${format})` : ''} is not cached`);
    ctx.body = { id, s3: stored, memory: inMemory ?? null };
  });

  // Every format of the video, or with ?format= only that one, from this node's memory and from the store.
  router.delete('/videos/:id', async (ctx) => {
    const id = parseVideoId(ctx.params.id ?? '');
    const format = askedFormat(ctx.query.format);
    const entries = (format ? [format] : [...service.config.FORMATS.selectors.keys()]).reduce((n, name) => n + memory.deleteVideo(cache.video(id, name)), 0);
    const removed = await removeVideos(store, [id], { concurrency: DEFAULT_CONCURRENCY, format });
    if (removed.failures.length) throw new TubeError('STORE_ERROR', `${removed.failures.length} objects not deleted, first: ${removed.failures[0]!.key}`);
    if (entries === 0 && removed.missing.length) throw new TubeError('NOT_FOUND', `video ${id} is not cached`);
    ctx.body = { id, memory: { entries }, s3: { videos: removed.videos.length, objects: removed.objects, bytes: removed.bytes } };
  });

  router.post('/prune', async (ctx) => {
    ctx.body = await service.pruner.run(pruneOptions(await readJson(ctx)));
  });

  router.get('/stats', async (ctx) => {
    ctx.body = await stats(service);
  });

  /** `?format=` of the video routes: absent means every format. */
  const askedFormat = (value: string | string[] | undefined): FormatName | undefined => (value === undefined ? undefined : parseFormatParam(service.config.FORMATS, value));

  return async (ctx: Context) => {
    // A browser's navigation to the page carries no header: its 401 is the login page instead of a JSON error. No route is reached without the check.
    if (ctx.path === PAGE_PATH && ctx.get('Authorization') === '' && (ctx.method === 'GET' || ctx.method === 'HEAD')) return page.login(ctx);
    authorize(ctx);
    if ((ctx.request.length ?? 0) > BODY_MAX) throw new TubeError('PAYLOAD_TOO_LARGE', `Content-Length over ${BODY_MAX} bytes`);
    await routes(ctx);
  };
}

/** The admin API on its own port (ADMIN_PORT): every request goes through it, with the same request log, error bodies and path rules as the main app. */
export function createAdminApp(service: AppServices): Koa {
  const app = listenerApp(service.logger, service.metrics);
  app.use(adminApi(service));
  return app;
}

/** The body as a JSON object: none is `{}`; another Content-Type is 415; over BODY_MAX (also when chunked) is 413. */
async function readJson(ctx: Context): Promise<Record<string, unknown>> {
  const hasBody = ctx.request.length === undefined ? ctx.get('Transfer-Encoding') !== '' : ctx.request.length > 0;
  if (!hasBody) return {};
  if (!ctx.is('application/json')) throw new TubeError('UNSUPPORTED_MEDIA_TYPE', `got ${JSON.stringify(ctx.get('Content-Type').slice(0, 100))}`);
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > BODY_MAX) throw new TubeError('PAYLOAD_TOO_LARGE', `body over ${BODY_MAX} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new TubeError('BAD_REQUEST', 'body is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TubeError('BAD_REQUEST', 'body must be a JSON object');
  return value as Record<string, unknown>;
}

/** The CLI's prune flags as JSON: `{"ttl": "10m", "maxBytes": "5GiB", "dryRun": true, "concurrency": 8, "orphanGrace": "1h"}`. */
function pruneOptions(body: Record<string, unknown>): Partial<PruneOptions> {
  const options: Partial<PruneOptions> = {};
  const known = new Set(['ttl', 'maxBytes', 'dryRun', 'concurrency', 'orphanGrace']);
  for (const name of Object.keys(body)) if (!known.has(name)) throw new TubeError('BAD_REQUEST', `unknown prune option "${name}"`);
  const text = (name: string) => (typeof body[name] === 'string' || typeof body[name] === 'number' ? String(body[name]) : undefined);
  const invalid = (name: string, expected: string) => new TubeError('BAD_REQUEST', `${name}: expected ${expected}`);
  if (body.ttl !== undefined) options.ttlMs = parseDuration(text('ttl') ?? '') ?? fail(invalid('ttl', 'a duration such as "10m" or "7d"'));
  if (body.orphanGrace !== undefined) options.orphanGraceMs = parseDuration(text('orphanGrace') ?? '') ?? fail(invalid('orphanGrace', 'a duration'));
  if (body.maxBytes !== undefined) options.maxBytes = parseSize(text('maxBytes') ?? '') ?? fail(invalid('maxBytes', 'a size such as "5GiB"'));
  if (body.dryRun !== undefined) options.dryRun = typeof body.dryRun === 'boolean' ? body.dryRun : fail(invalid('dryRun', 'true or false'));
  if (body.concurrency !== undefined) {
    const n = body.concurrency;
    options.concurrency = typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 64 ? n : fail(invalid('concurrency', 'a whole number from 1 to 64'));
  }
  return options;
}

const fail = (error: Error): never => {
  throw error;
};

/** A counter's values keyed by one label. */
async function byLabel(counter: Counter<string>, label: string): Promise<Record<string, number>> {
  const values: Record<string, number> = {};
  for (const { labels, value } of (await counter.get()).values) {
    const key = String(labels[label] ?? '');
    values[key] = (values[key] ?? 0) + value;
  }
  return values;
}

const total = async (counter: Counter<string>) => (await counter.get()).values.reduce((n, { value }) => n + value, 0);
const ratio = (part: number, whole: number) => (whole > 0 ? Math.round((part / whole) * 1e4) / 1e4 : null);

/** `GET /admin/stats`: what this process has served and holds, from the same counters /metrics exposes. */
async function stats(service: AppServices) {
  const { metrics, memory, disk, cache, resolver, config } = service;
  const [requests, bytes, slices, origin, uploads, storeOperations, pruneRuns] = await Promise.all([
    byLabel(metrics.requests, 'status'),
    byLabel(metrics.bytesServed, 'tier'),
    byLabel(metrics.sliceReads, 'tier'),
    byLabel(metrics.originRequests, 'outcome'),
    byLabel(metrics.uploads, 'outcome'),
    byLabel(metrics.storeOperations, 'outcome'),
    byLabel(metrics.pruneRuns, 'outcome'),
  ]);
  const requestCount = Object.values(requests).reduce((n, v) => n + v, 0);
  const byteCount = Object.values(bytes).reduce((n, v) => n + v, 0);
  const sliceCount = Object.values(slices).reduce((n, v) => n + v, 0);
  const tier = (name: string) => ({
    bytes: bytes[name] ?? 0,
    slices: slices[name] ?? 0,
    byteRatio: ratio(bytes[name] ?? 0, byteCount),
    sliceRatio: ratio(slices[name] ?? 0, sliceCount),
  });
  const usage = process.memoryUsage();
  return {
    requests: { ...requests, total: requestCount, hitRatio: ratio((requests.HIT ?? 0) + (requests['HIT-DISK'] ?? 0) + (requests['HIT-S3'] ?? 0), requestCount) },
    tiers: { memory: tier('memory'), ...(disk && { disk: tier('disk') }), [service.store.name]: tier(service.store.name), origin: tier('origin') },
    memory: { bytes: memory.bytes, entries: memory.entries, maxBytes: config.MEMORY_CACHE_BYTES, evictions: await total(metrics.memoryEvictions) },
    ...(disk && {
      disk: {
        directory: disk.location,
        bytes: disk.bytes,
        entries: disk.entries,
        maxBytes: disk.budget,
        evictions: await total(metrics.diskEvictions),
        writes: { queued: disk.queued, dropped: await total(metrics.diskWritesDropped), ...(await byLabel(metrics.diskWrites, 'outcome')) },
      },
    }),
    uploads: { queued: cache.uploadsQueued, running: cache.uploadsRunning, dropped: await total(metrics.uploadsDropped), ...uploads },
    inFlight: { sliceFetches: cache.inFlight, ytdlpRuns: resolver.running, joins: await total(metrics.flightJoins) },
    origin: { requests: origin, bytes: await total(metrics.originBytes) },
    store: { kind: service.store.name, available: service.store.available, operations: storeOperations },
    prune: { running: service.pruner.running, runs: pruneRuns, deletedObjects: await total(metrics.pruneDeleted) },
    process: { rss: usage.rss, heapUsed: usage.heapUsed, uptimeSeconds: Math.round(process.uptime()) },
  };
}
