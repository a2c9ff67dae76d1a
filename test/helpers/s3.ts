/**
 * A real S3 endpoint for each test file; S3 is never mocked.
 *
 * Which one, in this order:
 * 1. `S3_TEST_ENDPOINT` set: that endpoint, with `S3_TEST_ACCESS_KEY_ID`,
 *    `S3_TEST_SECRET_ACCESS_KEY` and `S3_TEST_REGION`. pause()/resume() throw;
 *    tests that need them check `canPause` and skip.
 * 2. A Docker engine answers /_ping within ~300 ms: MinIO via @testcontainers/minio
 *    (image: `S3_TEST_MINIO_IMAGE`), reached through a TCP gate in this process
 *    so pause() can refuse connections while the container keeps its data.
 * 3. Otherwise none: startTestS3() throws NoTestS3 with the reason, and
 *    `noTestS3Reason()` tells tests that need S3 why they skip.
 *
 * `S3_TEST_KIND=minio` forces 2 (failing when Docker is missing). Set
 * `TUBECACHE_TEST_VERBOSE=1` to have the choice written to stderr.
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListObjectsV2Command,
  S3Client,
  type BucketLocationConstraint,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { createS3Client, s3SettingsFrom } from '../../src/cache/s3-store.js';
import { loadConfig } from '../../src/config.js';

export type TestS3Kind = 'external' | 'minio';

/** No S3 server for the tests: neither S3_TEST_ENDPOINT nor a Docker engine. */
export class NoTestS3 extends Error {}

/** The S3_* variables tubecache reads (src/config.ts), for a fresh bucket. */
export interface TestS3Env extends Record<string, string> {
  S3_ENDPOINT: string;
  S3_REGION: string;
  S3_ACCESS_KEY_ID: string;
  S3_SECRET_ACCESS_KEY: string;
  S3_FORCE_PATH_STYLE: 'true';
  S3_BUCKET: string;
}

export interface TestS3 {
  kind: TestS3Kind;
  /** Env for a fresh, created bucket: spread it into the service's env. */
  env: TestS3Env;
  /** The same endpoint and keys with another fresh, created bucket. */
  newBucket(): Promise<TestS3Env>;
  /** Whether pause()/resume() work (false for S3_TEST_ENDPOINT). */
  canPause: boolean;
  /** The endpoint stops answering: new connections are refused, open ones are dropped. */
  pause(): Promise<void>;
  /** The same endpoint answers again, with the same data. */
  resume(): Promise<void>;
  /** Stops the server (or, for an external endpoint, deletes the buckets it created). Idempotent. */
  stop(): Promise<void>;
}

/** pause()/resume() work unless the tests run against S3_TEST_ENDPOINT. */
export const canPause = !process.env.S3_TEST_ENDPOINT;
export const cannotPauseReason = 'pause/resume not supported with S3_TEST_ENDPOINT';

const DEFAULT_MINIO_IMAGE = 'quay.io/minio/minio:RELEASE.2025-04-22T22-12-26Z';

/** The S3Client tubecache itself would build from this env (the one construction, src/cache/s3-tier.ts). */
export function s3ClientFor(env: Record<string, string | undefined>, overrides: Partial<S3ClientConfig> = {}): S3Client {
  return createS3Client(s3SettingsFrom(loadConfig(env)), overrides);
}

// ---------------------------------------------------------------------------
// Docker detection

export interface DockerProbe {
  available: boolean;
  /** The DOCKER_HOST-style address that answered, e.g. unix:///var/run/docker.sock. */
  host?: string;
  /** Why Docker is (not) used, for logs and skip messages. */
  reason: string;
  /** How long the probe took. */
  ms: number;
}

interface PingTarget {
  host: string;
  options: RequestOptions;
  https: boolean;
}

/** `docker.host` / `tc.host` from ~/.testcontainers.properties, as testcontainers reads them. */
function testcontainersProperty(name: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(join(homedir(), '.testcontainers.properties'), 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split(/\r?\n/)) {
    const match = /^\s*([\w.]+)\s*[=:]\s*(.*?)\s*$/.exec(line);
    if (match && match[1] === name && match[2]) return match[2];
  }
  return undefined;
}

function pingTarget(host: string): PingTarget | string {
  let url: URL;
  try {
    url = new URL(host);
  } catch {
    return `cannot parse docker host "${host}"`;
  }
  switch (url.protocol) {
    case 'unix:':
      return { host, https: false, options: { socketPath: url.pathname } };
    case 'npipe:':
      // npipe:////./pipe/docker_engine -> \\.\pipe\docker_engine
      return { host, https: false, options: { socketPath: url.pathname.replace(/^\/+/, '\\\\').replaceAll('/', '\\') } };
    case 'tcp:':
    case 'http:':
    case 'https:': {
      const tls = url.protocol === 'https:' || (!!process.env.DOCKER_TLS_VERIFY && process.env.DOCKER_TLS_VERIFY !== '0');
      const options: RequestOptions = { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || (tls ? 2376 : 2375)) };
      if (tls) {
        const certs = process.env.DOCKER_CERT_PATH || join(homedir(), '.docker');
        try {
          Object.assign(options, {
            ca: readFileSync(join(certs, 'ca.pem')),
            cert: readFileSync(join(certs, 'cert.pem')),
            key: readFileSync(join(certs, 'key.pem')),
          });
        } catch {
          // No client certificates: try without; the daemon may not require them.
        }
      }
      return { host, https: tls, options };
    }
    default:
      return `docker host "${host}" cannot be pinged (${url.protocol})`;
  }
}

/** GET /_ping; resolves to an error message, or undefined when the engine answered OK. */
function ping(target: PingTarget, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolvePing) => {
    const done = (error: string | undefined) => {
      clearTimeout(timer);
      resolvePing(error);
    };
    const timer = setTimeout(() => {
      request.destroy();
      done(`${target.host}: no answer within ${timeoutMs} ms`);
    }, timeoutMs);
    const request = (target.https ? httpsRequest : httpRequest)(
      // agent: false, so no keep-alive socket outlives the probe.
      { ...target.options, method: 'GET', path: '/_ping', agent: false },
      (response: IncomingMessage) => {
        response.resume();
        response.on('error', () => undefined);
        done(response.statusCode === 200 ? undefined : `${target.host}: /_ping answered ${response.statusCode}`);
      },
    );
    request.on('error', (error: NodeJS.ErrnoException) => done(`${target.host}: ${error.code ?? error.message}`));
    request.end();
  });
}

/**
 * Whether a Docker engine answers, decided within about `timeoutMs` (probes run in
 * parallel). Looks where testcontainers looks: DOCKER_HOST, else
 * ~/.testcontainers.properties, else the usual sockets (rootful, rootless,
 * Docker Desktop). Sets DOCKER_HOST when it found an engine elsewhere, so
 * testcontainers uses the same one without probing again.
 */
export async function detectDocker(options: { timeoutMs?: number; /** probe only this DOCKER_HOST-style address */ host?: string } = {}): Promise<DockerProbe> {
  const timeoutMs = options.timeoutMs ?? 300;
  const started = performance.now();
  const configured = options.host || process.env.DOCKER_HOST || testcontainersProperty('tc.host') || testcontainersProperty('docker.host');
  const hosts = configured
    ? [configured]
    : process.platform === 'win32'
      ? ['npipe:////./pipe/docker_engine']
      : [
          'unix:///var/run/docker.sock',
          ...(process.env.XDG_RUNTIME_DIR ? [`unix://${join(process.env.XDG_RUNTIME_DIR, 'docker.sock')}`] : []),
          `unix://${join(homedir(), '.docker', 'run', 'docker.sock')}`,
          `unix://${join(homedir(), '.docker', 'desktop', 'docker.sock')}`,
          `unix:///run/user/${userInfo().uid}/docker.sock`,
        ];
  const unique = [...new Set(hosts)];
  const failures: string[] = [];
  const found = await new Promise<string | undefined>((resolveFound) => {
    let pending = unique.length;
    for (const host of unique) {
      const target = pingTarget(host);
      const result = typeof target === 'string' ? Promise.resolve(target) : ping(target, timeoutMs);
      void result.then((error) => {
        if (error === undefined) resolveFound(host);
        else failures.push(error);
        if (--pending === 0) resolveFound(undefined);
      });
    }
  });
  const ms = performance.now() - started;
  if (found === undefined) return { available: false, reason: `no Docker engine: ${failures.join('; ')}`, ms };
  if (!configured) process.env.DOCKER_HOST = found;
  return { available: true, host: found, reason: `Docker engine at ${found}`, ms };
}

// ---------------------------------------------------------------------------
// TCP gate: a port in this process forwarding to another address, which can
// refuse connections (pause) and accept them again on the same port (resume).

/**
 * After a server drops its connections, clients in this process see the FIN only
 * when their event loop next polls; until then a pooled keep-alive socket still
 * looks usable and a request on it fails with ECONNRESET instead of ECONNREFUSED.
 * pause() waits this long so that "paused" means "refused" for in-process clients.
 */
const settle = () => sleep(20);

export interface TcpGate {
  port: number;
  /** Stop listening and drop every forwarded connection; connecting then fails with ECONNREFUSED. */
  pause(): Promise<void>;
  /** Listen again on the same port. */
  resume(): Promise<void>;
  close(): Promise<void>;
}

/** Listens on `port` of 127.0.0.1, retrying briefly when the port is still (or, by chance, just) taken. */
async function listen(server: Server, port: number, host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      await new Promise<void>((resolveListen, rejectListen) => {
        server.once('error', rejectListen);
        server.listen(port, host, () => {
          server.off('error', rejectListen);
          resolveListen();
        });
      });
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('server has no TCP address');
      return address.port;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || port === 0 || attempt >= 20) throw error;
      await sleep(50);
    }
  }
}

export async function startTcpGate(targetHost: string, targetPort: number): Promise<TcpGate> {
  const sockets = new Set<Socket>();
  const makeServer = () =>
    createServer((client) => {
      const upstream = createConnection({ host: targetHost, port: targetPort });
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });

  let server: Server | undefined = makeServer();
  const port = await listen(server, 0);

  const pause = async () => {
    const current = server;
    if (!current) return;
    server = undefined;
    const closed = new Promise<void>((resolveClose) => current.close(() => resolveClose()));
    for (const socket of sockets) socket.destroy();
    await closed;
    await settle();
  };
  let stopped = false;
  return {
    port,
    pause,
    async resume() {
      if (stopped) throw new Error('TCP gate is closed');
      if (server) return;
      const next = makeServer();
      await listen(next, port);
      server = next;
    },
    async close() {
      stopped = true;
      await pause();
    },
  };
}

// ---------------------------------------------------------------------------
// startTestS3

let announced = false;
function announce(message: string): void {
  if (announced || !process.env.TUBECACHE_TEST_VERBOSE) return;
  announced = true;
  process.stderr.write(`[tubecache test] ${message}\n`);
}

let bucketCounter = 0;
/** A valid, unique bucket name: lowercase, 3–63 characters. */
function uniqueBucketName(): string {
  return `tubecache-test-${Date.now().toString(36)}-${process.pid.toString(36)}-${(bucketCounter++).toString(36)}-${randomBytes(3).toString('hex')}`;
}

interface Backend {
  kind: TestS3Kind;
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  pause(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
}

async function externalBackend(endpoint: string): Promise<Backend> {
  const unsupported = async () => {
    throw new Error(`${cannotPauseReason} (${endpoint})`);
  };
  return {
    kind: 'external',
    endpoint,
    region: process.env.S3_TEST_REGION || 'us-east-1',
    accessKeyId: process.env.S3_TEST_ACCESS_KEY_ID ?? '',
    secretAccessKey: process.env.S3_TEST_SECRET_ACCESS_KEY ?? '',
    pause: unsupported,
    resume: unsupported,
    stop: async () => undefined,
  };
}

async function minioBackend(): Promise<Backend> {
  // Loaded only when Docker is there: importing testcontainers is not free.
  const { MinioContainer } = await import('@testcontainers/minio');
  const container = await new MinioContainer(process.env.S3_TEST_MINIO_IMAGE || DEFAULT_MINIO_IMAGE)
    .withUsername('tubecache')
    .withPassword('tubecache-secret')
    .start();
  let gate: TcpGate;
  try {
    gate = await startTcpGate(container.getHost(), container.getPort());
  } catch (error) {
    await container.stop();
    throw error;
  }
  return {
    kind: 'minio',
    endpoint: `http://127.0.0.1:${gate.port}`,
    region: 'us-east-1',
    accessKeyId: container.getUsername(),
    secretAccessKey: container.getPassword(),
    pause: () => gate.pause(),
    resume: () => gate.resume(),
    async stop() {
      await gate.close();
      await container.stop();
    },
  };
}

async function chooseBackend(): Promise<Backend> {
  const external = process.env.S3_TEST_ENDPOINT;
  if (external) {
    announce(`S3: external endpoint ${external} (S3_TEST_ENDPOINT)`);
    return externalBackend(external);
  }
  const forced = process.env.S3_TEST_KIND;
  if (forced && forced !== 'minio') throw new Error(`S3_TEST_KIND must be minio, got "${forced}"`);
  const docker = await detectDocker();
  if (docker.available) {
    announce(`S3: MinIO in Docker (${docker.reason}, probed in ${docker.ms.toFixed(0)} ms)`);
    return minioBackend();
  }
  if (forced === 'minio') throw new Error(`S3_TEST_KIND=minio but ${docker.reason}`);
  throw new NoTestS3(`no S3 server for the tests: S3_TEST_ENDPOINT is not set and ${docker.reason}`);
}

/** Why tests that need S3 skip (undefined: they run). */
export async function noTestS3Reason(): Promise<string | undefined> {
  if (process.env.S3_TEST_ENDPOINT) return undefined;
  const docker = await detectDocker();
  return docker.available ? undefined : `no S3 server for the tests: S3_TEST_ENDPOINT is not set and ${docker.reason}`;
}

async function deleteBucket(client: S3Client, bucket: string): Promise<void> {
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    const keys = (page.Contents ?? []).flatMap((object) => (object.Key === undefined ? [] : [{ Key: object.Key }]));
    if (keys.length > 0) await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  await client.send(new DeleteBucketCommand({ Bucket: bucket }));
}

/** Starts (or connects to) a real S3 endpoint and creates a fresh bucket on it. Call stop() in test.after.always. */
export async function startTestS3(): Promise<TestS3> {
  const backend = await chooseBackend();
  const baseEnv = {
    S3_ENDPOINT: backend.endpoint,
    S3_REGION: backend.region,
    S3_ACCESS_KEY_ID: backend.accessKeyId,
    S3_SECRET_ACCESS_KEY: backend.secretAccessKey,
    S3_FORCE_PATH_STYLE: 'true' as const,
  };
  const admin = s3ClientFor(baseEnv);
  const created: string[] = [];

  const newBucket = async (): Promise<TestS3Env> => {
    const bucket = uniqueBucketName();
    await admin.send(
      new CreateBucketCommand({
        Bucket: bucket,
        // AWS wants the region spelled out everywhere but us-east-1.
        ...(backend.region === 'us-east-1'
          ? {}
          : { CreateBucketConfiguration: { LocationConstraint: backend.region as BucketLocationConstraint } }),
      }),
    );
    created.push(bucket);
    return { ...baseEnv, S3_BUCKET: bucket };
  };

  let env: TestS3Env;
  try {
    env = await newBucket();
  } catch (error) {
    admin.destroy();
    await backend.stop();
    throw error;
  }

  let stopping: Promise<void> | undefined;
  return {
    kind: backend.kind,
    env,
    newBucket,
    canPause: backend.kind !== 'external',
    pause: () => backend.pause(),
    resume: () => backend.resume(),
    stop() {
      stopping ??= (async () => {
        // Containers and temporary directories take their buckets with them; on
        // an external endpoint, remove what the tests created (best effort).
        if (backend.kind === 'external' && !process.env.S3_TEST_KEEP_BUCKETS) {
          for (const bucket of created) await deleteBucket(admin, bucket).catch(() => undefined);
        }
        admin.destroy();
        await backend.stop();
      })();
      return stopping;
    },
  };
}
