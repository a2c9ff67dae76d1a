import { createHash, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { pino, type Logger } from 'pino';
import { loadConfig } from '../../src/config.js';
import { Service } from '../../src/service.js';
import { FAKE_YTDLP_PATH, FIXTURE_VIDEO_PATH, startOrigin, type Origin } from './origin.js';
import { startTestS3, type TestS3, type TestS3Env } from './s3.js';

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
    const req = request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
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
    req.on('error', reject);
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

/**
 * One test file's world: a YouTube-like origin with the fixture, a real S3
 * endpoint, and tubecache nodes started against them.
 */
export interface Harness {
  origin: Origin;
  s3: TestS3;
  /** Env every node gets: the S3 bucket, the stand-in yt-dlp, the origin allowed. */
  env: Record<string, string>;
  /** `logger` replaces the default pino(LOG_LEVEL) to stdout, for tests that read the request log. */
  node(env?: Record<string, string>, s3Env?: TestS3Env, logger?: Logger): Promise<Node>;
  /** Adds the fixture (or `bytes`) under a new id and returns the id. */
  video(bytes?: Buffer, options?: Parameters<Origin['addVideo']>[2]): string;
  close(): Promise<void>;
}

export async function startHarness(): Promise<Harness> {
  const [origin, s3] = await Promise.all([startOrigin(), startTestS3()]);
  const nodes = new Set<Node>();
  const env: Record<string, string> = {
    ...s3.env,
    YTDLP_PATH: FAKE_YTDLP_PATH,
    YTDLP_URL_TEMPLATE: `${origin.url}/watch?v={id}`,
    ORIGIN_ALLOWED_HOSTS: '127.0.0.1',
    ORIGIN_RANGE_QUERY_HOSTS: '',
    PORT: '0',
    LOG_LEVEL: process.env.TUBECACHE_TEST_LOG ?? 'silent',
    SLICE_BYTES: '256KiB',
    HEAD_SECONDS: '10',
    // The test S3 often shares this process's event loop with a hundred clients: an answer
    // slower than the defaults there is load, not the fault test/faults/ checks on purpose.
    S3_CONNECT_TIMEOUT: '10s',
    S3_FIRST_BYTE_TIMEOUT: '30s',
    S3_IDLE_TIMEOUT: '30s',
  };
  return {
    origin,
    s3,
    env,
    async node(overrides = {}, s3Env, logger) {
      const config = loadConfig({ ...env, ...s3Env, ...overrides });
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
      await Promise.all([origin.close(), s3.stop()]);
    },
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
