import { once } from 'node:events';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import type Koa from 'koa';
import { DiskTier } from './cache/disk-tier.js';
import { LeaseBoard } from './cache/lease.js';
import { MemoryTier } from './cache/memory-tier.js';
import { PeerClient } from './cache/peer-client.js';
import { SliceBudget } from './cache/slice-budget.js';
import { openStore } from './cache/open-store.js';
import { S3Store } from './cache/s3-store.js';
import type { StoreTier } from './cache/store-tier.js';
import { TieredCache } from './cache/tiered-cache.js';
import type { Config } from './config.js';
import { ConfigError, isTubeError } from './errors.js';
import { adminApi, createAdminApp } from './http/admin.js';
import { createApp } from './http/app.js';
import { memoryHitFirst } from './http/memory-hit.js';
import { peerApi } from './http/peer.js';
import type { AppServices, ReadinessCheck } from './http/services.js';
import { createMetrics, type Metrics } from './metrics.js';
import { Pruner } from './ops/prune.js';
import { OriginFetcher } from './origin/fetcher.js';
import { Resolver } from './origin/resolver.js';

/** yt-dlp's readiness is re-checked at most this often: it is a process start (a Python one). */
const YTDLP_CHECK_MS = 60_000;
/** How this node shares origin fetches with the others on its store (the `sharing` readiness detail). */
const SHARING = {
  leases: 'leases: nodes on this store fetch each slice from the origin once between them',
  'per-node': 'per node: the store is not S3 with conditional writes, so each node fetches on its own',
  unknown: 'not known yet: the conditional-write probe waits for the store to answer',
} as const;
/** Each readiness check gets this long, so /readyz answers within 2 s whatever hangs behind it. */
const READY_CHECK_MS = 1_500;
/** While draining, keep-alive connections that finish a response are closed this often instead of waiting for a next request. */
const DRAIN_POLL_MS = 100;

/**
 * Everything one tubecache process runs, wired once: the tiers, the origin,
 * the metrics and the HTTP app. `main` and the tests both build it this way.
 */
export class Service implements AppServices {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly memory: MemoryTier;
  readonly store: StoreTier;
  /** This node's disk tier between memory and S3 (DISK_CACHE_DIR), when set. */
  readonly disk: DiskTier | undefined;
  readonly leases: LeaseBoard;
  /** Streams slices from the nodes holding their leases, when PEER_URL is set. */
  readonly peers: PeerClient | undefined;
  readonly resolver: Resolver;
  readonly fetcher: OriginFetcher;
  readonly cache: TieredCache;
  readonly pruner: Pruner;
  readonly app: Koa;
  /** The admin API when it has a port of its own (ADMIN_TOKEN and ADMIN_PORT set). */
  readonly adminApp: Koa | undefined;
  #servers: Server[] = [];
  #ytdlpCheck: { at: number; result: ReadinessCheck } | undefined;
  #closing = false;

  private constructor(config: Config, logger: Logger, metrics: Metrics, store: StoreTier, disk: DiskTier | undefined) {
    this.config = config;
    this.logger = logger;
    this.metrics = metrics;
    this.memory = new MemoryTier({ budget: new SliceBudget(config.MEMORY_CACHE_BYTES, config.SLICE_BYTES), ttlMs: config.MEMORY_CACHE_TTL, metrics: this.metrics });
    this.store = store;
    this.disk = disk;
    this.leases = new LeaseBoard({ tier: store, config, metrics, logger });
    this.peers = config.PEER_URL ? new PeerClient({ config, metrics, logger }) : undefined;
    this.resolver = new Resolver({ config, metrics: this.metrics, logger });
    this.fetcher = new OriginFetcher({ config, resolver: this.resolver, metrics: this.metrics, logger });
    this.cache = new TieredCache({ config, memory: this.memory, store, disk, leases: this.leases, peers: this.peers, resolver: this.resolver, fetcher: this.fetcher, metrics: this.metrics, logger });
    this.pruner = new Pruner({ store, config, metrics: this.metrics, logger });
    const admin = config.ADMIN_TOKEN !== '';
    this.app = createApp(this, { admin: admin && config.ADMIN_PORT === 0 ? adminApi(this) : undefined, peer: this.peers && peerApi(this) });
    this.adminApp = admin && config.ADMIN_PORT !== 0 ? createAdminApp(this) : undefined;
    if (config.PRUNE_INTERVAL) this.pruner.schedule(config.PRUNE_INTERVAL);
  }

  /** Builds the service on the S3 bucket, or with no S3_ENDPOINT on the disk store under DATA_DIR. */
  static async create(config: Config, logger: Logger = pino({ level: config.LOG_LEVEL })): Promise<Service> {
    const metrics = createMetrics();
    const service = new Service(config, logger, metrics, await openStore(config, metrics), await DiskTier.open(config, metrics, logger));
    const { store } = service.store;
    try {
      if (store instanceof S3Store) await store.ensureBucket(config.S3_CREATE_BUCKET);
    } catch (error) {
      if (isTubeError(error) && !error.cause) {
        await service.close();
        throw new ConfigError('S3_BUCKET', error.message);
      }
      // S3 unreachable: serve from memory and the origin until it is back (the first lease claim then probes it).
      logger.error({ err: error }, 'S3 is not reachable at start-up; serving without it until it answers');
      return service;
    }
    await service.leases.probe();
    return service;
  }

  /** Listens on PORT (and ADMIN_PORT); resolves with the bound addresses. */
  async listen(): Promise<{ url: string; adminUrl?: string }> {
    const url = await this.#listen(memoryHitFirst(this, this.app.callback()), this.config.PORT);
    return this.adminApp ? { url, adminUrl: await this.#listen(this.adminApp.callback(), this.config.ADMIN_PORT) } : { url };
  }

  async #listen(listener: RequestListener, port: number): Promise<string> {
    const server = createServer(listener).listen(port, this.config.HOST);
    // Players keep connections open between range requests.
    server.keepAliveTimeout = 65_000;
    this.#servers.push(server);
    await once(server, 'listening');
    const bound = (server.address() as AddressInfo).port;
    const host = this.config.HOST.includes(':') ? `[${this.config.HOST}]` : this.config.HOST;
    return `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${bound}`;
  }

  /** The checks behind /readyz, each within READY_CHECK_MS; a closing service is not ready, at once, so balancers drain it. */
  async readiness(): Promise<Record<string, ReadinessCheck>> {
    if (this.#closing) return { shutdown: { ok: false, detail: 'shutting down' } };
    const [store, ytdlp] = await Promise.all([withinDeadline(this.store.ping().then(() => ({ ok: true }))), withinDeadline(this.#ytdlpReady())]);
    return { store, ytdlp, sharing: { ok: true, detail: SHARING[this.leases.mode] } };
  }

  async #ytdlpReady(): Promise<ReadinessCheck> {
    if (this.#ytdlpCheck && Date.now() - this.#ytdlpCheck.at < YTDLP_CHECK_MS) return this.#ytdlpCheck.result;
    const result = await this.resolver.version().then(
      (version) => ({ ok: true, detail: version }),
      (error: Error) => ({ ok: false, detail: error.message }),
    );
    this.#ytdlpCheck = { at: Date.now(), result };
    return result;
  }

  /**
   * Stops accepting, lets in-flight responses and uploads run for up to
   * `graceMs` (SHUTDOWN_GRACE on a signal; 0 cuts at once), then closes what
   * is left. Nothing in here waits on S3 without a deadline.
   */
  async close(graceMs = 0): Promise<void> {
    const deadline = Date.now() + graceMs;
    this.#closing = true;
    await Promise.all([this.pruner.stop(), ...this.#servers.map((server) => drain(server, graceMs))]);
    this.#servers = [];
    await this.cache.close(Math.max(0, deadline - Date.now()));
    this.leases.close();
    this.fetcher.close();
    this.peers?.close();
    await Promise.all([this.store.store.close(), this.disk?.close()]);
  }
}

/** Closes `server`: no new connections, idle ones closed as they become idle, the rest cut after `graceMs`. */
async function drain(server: Server, graceMs: number): Promise<void> {
  const closed = new Promise((resolve) => server.close(resolve));
  server.closeIdleConnections();
  const idle = setInterval(() => server.closeIdleConnections(), DRAIN_POLL_MS);
  const cut = setTimeout(() => server.closeAllConnections(), graceMs);
  await closed;
  clearInterval(idle);
  clearTimeout(cut);
}

/** The check's answer, or a failed check if it takes longer than READY_CHECK_MS. */
async function withinDeadline(check: Promise<ReadinessCheck>): Promise<ReadinessCheck> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<ReadinessCheck>((resolve) => (timer = setTimeout(() => resolve({ ok: false, detail: `no answer within ${READY_CHECK_MS} ms` }), READY_CHECK_MS)));
  try {
    return await Promise.race([check.catch((error: Error) => ({ ok: false, detail: error.message })), late]);
  } finally {
    clearTimeout(timer);
  }
}
