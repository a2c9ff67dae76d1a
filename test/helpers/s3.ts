/**
 * A real S3 endpoint for each test file; S3 is never mocked.
 *
 * Which one, in this order:
 * 1. `S3_TEST_ENDPOINT` set: that endpoint, with `S3_TEST_ACCESS_KEY_ID`,
 *    `S3_TEST_SECRET_ACCESS_KEY` and `S3_TEST_REGION`. In CI this is the Ceph RGW
 *    that scripts/ceph-rgw.sh starts (it writes those lines to /tmp/rgw.env).
 * 2. A Docker engine answers /_ping within ~300 ms: MinIO via @testcontainers/minio
 *    (image: `S3_TEST_MINIO_IMAGE`).
 * 3. Otherwise there is no S3: `chooseTestS3()` says so with a reason (printed once
 *    to stderr), S3 tests skip with that reason, and startTestS3() throws it.
 *
 * Whichever it is, the tests reach it through an in-process fault proxy
 * (test/helpers/fault-proxy.ts): `env.S3_ENDPOINT` is the proxy, `proxy` sets its
 * faults, and pause()/resume() work on every backend. Set `TUBECACHE_TEST_VERBOSE=1`
 * to have the choice written to stderr.
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
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
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';

export type TestS3Kind = 'external' | 'minio';

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
  /** Env for a fresh, created bucket, through the fault proxy: spread it into the service's env. */
  env: TestS3Env;
  /** The same endpoint and keys with another fresh, created bucket. */
  newBucket(): Promise<TestS3Env>;
  /** The fault proxy every `env` points at: latency, freeze, resets, 503 SlowDown… */
  proxy: FaultProxy;
  /** The endpoint stops answering: new connections are refused, open ones are dropped. */
  pause(): Promise<void>;
  /** The same endpoint answers again, with the same data. */
  resume(): Promise<void>;
  /** Stops the proxy and the server (or, for an external endpoint, deletes the buckets it created). Idempotent. */
  stop(): Promise<void>;
}

export type TestS3Choice = { available: true; kind: TestS3Kind; reason: string } | { available: false; reason: string };

const DEFAULT_MINIO_IMAGE = 'quay.io/minio/minio:RELEASE.2025-04-22T22-12-26Z';

/**
 * The S3 deadlines tests run under unless they set their own: the test S3 often shares
 * this process's event loop with a hundred clients, and an answer slower than the
 * shipped defaults there is load, not the fault test/faults/ checks on purpose.
 */
export const RELAXED_S3_DEADLINES = { S3_CONNECT_TIMEOUT: '10s', S3_FIRST_BYTE_TIMEOUT: '30s', S3_IDLE_TIMEOUT: '30s' };

/** The S3Client tubecache itself would build from this env (the one construction, src/cache/s3-store.ts), with RELAXED_S3_DEADLINES unless the env sets them. */
export function s3ClientFor(env: Record<string, string | undefined>, overrides: Partial<S3ClientConfig> = {}): S3Client {
  return createS3Client(s3SettingsFrom(loadConfig({ ...RELAXED_S3_DEADLINES, ...env })), overrides);
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
// Choosing and starting a backend

/**
 * Which S3 the tests would use, from `env` and a Docker probe. Exported for its
 * test; tests call chooseTestS3().
 */
export async function decideTestS3(
  env: Record<string, string | undefined> = process.env,
  probe: () => Promise<DockerProbe> = detectDocker,
): Promise<TestS3Choice> {
  if (env.S3_TEST_ENDPOINT) return { available: true, kind: 'external', reason: `external endpoint ${env.S3_TEST_ENDPOINT} (S3_TEST_ENDPOINT)` };
  const docker = await probe();
  if (docker.available) return { available: true, kind: 'minio', reason: `MinIO in Docker (${docker.reason}, probed in ${docker.ms.toFixed(0)} ms)` };
  return {
    available: false,
    reason: `no S3 for tests: S3_TEST_ENDPOINT is not set and ${docker.reason} (as root, scripts/ceph-rgw.sh starts Ceph RGW and writes /tmp/rgw.env)`,
  };
}

let choice: Promise<TestS3Choice> | undefined;
/**
 * The S3 this process's tests use, decided once. When none is available the reason
 * is printed once to stderr; S3 tests then skip:
 *
 *   const s3Choice = await chooseTestS3();
 *   const s3Test = s3Choice.available ? test : test.skip;
 */
export function chooseTestS3(): Promise<TestS3Choice> {
  choice ??= decideTestS3().then((decided) => {
    if (!decided.available) process.stderr.write(`[tubecache test] S3 tests skip: ${decided.reason}\n`);
    else if (process.env.TUBECACHE_TEST_VERBOSE) process.stderr.write(`[tubecache test] S3: ${decided.reason}\n`);
    return decided;
  });
  return choice;
}

let bucketCounter = 0;
/** A valid, unique bucket name: lowercase, 3–63 characters. */
function uniqueBucketName(): string {
  return `tubecache-test-${Date.now().toString(36)}-${process.pid.toString(36)}-${(bucketCounter++).toString(36)}-${randomBytes(3).toString('hex')}`;
}

interface Backend {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  stop(): Promise<void>;
}

function externalBackend(endpoint: string): Backend {
  return {
    endpoint,
    region: process.env.S3_TEST_REGION || 'us-east-1',
    accessKeyId: process.env.S3_TEST_ACCESS_KEY_ID ?? '',
    secretAccessKey: process.env.S3_TEST_SECRET_ACCESS_KEY ?? '',
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
  return {
    endpoint: `http://${container.getHost()}:${container.getPort()}`,
    region: 'us-east-1',
    accessKeyId: container.getUsername(),
    secretAccessKey: container.getPassword(),
    stop: async () => {
      await container.stop();
    },
  };
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

/**
 * Starts (or connects to) a real S3 endpoint, puts a fault proxy in front of it and
 * creates a fresh bucket. Throws the reason when chooseTestS3() found none.
 * Call stop() in test.after.always.
 */
export async function startTestS3(): Promise<TestS3> {
  const chosen = await chooseTestS3();
  if (!chosen.available) throw new Error(chosen.reason);
  const backend = chosen.kind === 'external' ? externalBackend(process.env.S3_TEST_ENDPOINT!) : await minioBackend();
  let proxy: FaultProxy;
  try {
    proxy = await startFaultProxy({ target: backend.endpoint });
  } catch (error) {
    await backend.stop();
    throw error;
  }
  const credentials = {
    S3_REGION: backend.region,
    S3_ACCESS_KEY_ID: backend.accessKeyId,
    S3_SECRET_ACCESS_KEY: backend.secretAccessKey,
    S3_FORCE_PATH_STYLE: 'true' as const,
  };
  const baseEnv = { ...credentials, S3_ENDPOINT: proxy.endpoint };
  // Bucket set-up and clean-up go around the proxy, so faults set by a test never break them.
  const admin = s3ClientFor({ ...credentials, S3_ENDPOINT: backend.endpoint });
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
    await proxy.close();
    await backend.stop();
    throw error;
  }

  let stopping: Promise<void> | undefined;
  return {
    kind: chosen.kind,
    env,
    newBucket,
    proxy,
    pause: () => proxy.refuse(),
    resume: () => proxy.accept(),
    stop() {
      stopping ??= (async () => {
        await proxy.close();
        // Containers take their buckets with them; on an external endpoint,
        // remove what the tests created (best effort).
        if (chosen.kind === 'external' && !process.env.S3_TEST_KEEP_BUCKETS) {
          for (const bucket of created) await deleteBucket(admin, bucket).catch(() => undefined);
        }
        admin.destroy();
        await backend.stop();
      })();
      return stopping;
    },
  };
}
