import { createHash, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, type IncomingHttpHeaders } from 'node:http';
import { createServer } from 'node:net';
import { pino, type Logger } from 'pino';
import { loadConfig } from '../../src/config.js';
import { Service } from '../../src/service.js';
import { FAKE_YTDLP_PATH, FIXTURE_VIDEO_PATH, startOrigin, type Origin } from './origin.js';
import { RELAXED_S3_DEADLINES, startTestS3, type TestS3 } from './s3.js';

export const fixture = readFileSync(FIXTURE_VIDEO_PATH);
export const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
export const fixtureSha = sha256(fixture);

const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';
/** A fresh valid video id (sometimes starting with "-", which must never be read as an option). */
export const newVideoId = () => Array.from({ length: 11 }, () => ID_ALPHABET[randomInt(ID_ALPHABET.length)]).join('');

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  sha256: string;
  /** False when the connection ended before Content-Length bytes arrived. */
  complete: boolean;
}

/** One HTTP request on a fresh connection; collects the body (or what arrived of it). */
export function fetchRaw(url: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    let responded = false;
    const req = request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      responded = true;
      const chunks: Buffer[] = [];
      let complete = true;
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('aborted', () => (complete = false));
      res.on('error', () => (complete = false));
      res.on('close', () => {
        const body = Buffer.concat(chunks);
        const expected = res.headers['content-length'];
        if (expected !== undefined && options.method !== 'HEAD' && Number(expected) !== body.length) complete = false;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, sha256: sha256(body), complete });
      });
    });
    // Once the response has begun, a reset shows as `complete: false` (Node 24 also emits it on the request).
    req.on('error', (error) => (responded ? undefined : reject(error)));
    req.end();
  });
}

export interface Node {
  service: Service;
  url: string;
  get(path: string, headers?: Record<string, string>): Promise<Reply>;
  head(path: string, headers?: Record<string, string>): Promise<Reply>;
  post(path: string): Promise<Reply>;
  close(): Promise<void>;
}

/** Where a harness's nodes keep videos: the disk store (a temporary DATA_DIR), or a real S3 bucket. */
export interface TestStore {
  kind: 'disk' | 's3';
  /** The X-Cache-Status of bytes from this store. */
  hit: 'HIT-DISK' | 'HIT-S3';
  /** The S3 server, for tests that stop it (kind 's3' only). */
  s3: TestS3 | undefined;
  /** Env for another, empty store (a new DATA_DIR, or a new bucket). */
  fresh(): Promise<Record<string, string>>;
}

/**
 * One test file's world: a YouTube-like origin with the fixture, a store (the
 * disk store unless the file asks for S3), and tubecache nodes started against them.
 */
export interface Harness {
  origin: Origin;
  store: TestStore;
  /** Env every node gets: the store, the stand-in yt-dlp, the origin allowed. */
  env: Record<string, string>;
  /** `storeEnv` (from store.fresh()) replaces the shared store; `logger` the default pino(LOG_LEVEL) to stdout, for tests that read the request log. */
  node(env?: Record<string, string>, storeEnv?: Record<string, string>, logger?: Logger): Promise<Node>;
  /** Adds the fixture (or `bytes`) under a new id and returns the id. */
  video(bytes?: Buffer, options?: Parameters<Origin['addVideo']>[2]): string;
  close(): Promise<void>;
}

/** Starts the origin and the store; `{ store: 's3' }` needs an S3 server (it throws NoTestS3 when there is none). */
export async function startHarness(options: { store?: 'disk' | 's3' } = {}): Promise<Harness> {
  const [origin, store] = await Promise.all([startOrigin(), startTestStore(options.store ?? 'disk')]);
  const nodes = new Set<Node>();
  const env: Record<string, string> = {
    ...(await store.fresh()),
    YTDLP_PATH: FAKE_YTDLP_PATH,
    YTDLP_URL_TEMPLATE: `${origin.url}/watch?v={id}`,
    ORIGIN_ALLOWED_HOSTS: '127.0.0.1',
    ORIGIN_RANGE_QUERY_HOSTS: '',
    PORT: '0',
    LOG_LEVEL: process.env.TUBECACHE_TEST_LOG ?? 'silent',
    SLICE_BYTES: '256KiB',
    HEAD_SECONDS: '10',
    ...RELAXED_S3_DEADLINES,
  };
  return {
    origin,
    store,
    env,
    async node(overrides = {}, storeEnv, logger) {
      const config = loadConfig({ ...env, ...storeEnv, ...overrides });
      const service = await Service.create(config, logger ?? pino({ level: config.LOG_LEVEL }));
      const { url } = await service.listen();
      const node: Node = {
        service,
        url,
        get: (path, headers) => fetchRaw(url + path, { headers }),
        head: (path, headers) => fetchRaw(url + path, { method: 'HEAD', headers }),
        post: (path) => fetchRaw(url + path, { method: 'POST' }),
        async close() {
          nodes.delete(node);
          await service.close();
        },
      };
      nodes.add(node);
      return node;
    },
    video(bytes = fixture, options) {
      const id = newVideoId();
      origin.addVideo(id, bytes, options);
      return id;
    },
    async close() {
      await Promise.all([...nodes].map((node) => node.close()));
      await Promise.all([origin.close(), store.close()]);
    },
  };
}

export async function startTestStore(kind: 'disk' | 's3'): Promise<TestStore & { close(): Promise<void> }> {
  if (kind === 's3') {
    const s3 = await startTestS3();
    let first: Record<string, string> | undefined = s3.env;
    return {
      kind,
      hit: 'HIT-S3',
      s3,
      fresh: async () => {
        const env = first ?? (await s3.newBucket());
        first = undefined;
        return env;
      },
      close: () => s3.stop(),
    };
  }
  const root = await mkdtemp(join(tmpdir(), 'tubecache-test-'));
  let count = 0;
  return {
    kind,
    hit: 'HIT-DISK',
    s3: undefined,
    fresh: async () => ({ DATA_DIR: join(root, `data-${count++}`), S3_ENDPOINT: '' }),
    close: () => rm(root, { recursive: true, force: true }),
  };
}

/** Polls until `check` holds (background work such as uploads), failing after `ms`. */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A TCP port free at the time of the call (for ADMIN_PORT and other listeners a test must name). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
