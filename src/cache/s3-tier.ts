import { Agent } from 'node:https';
import { Agent as HttpAgent } from 'node:http';
import {
  CreateBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
  type _Object,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Config } from '../config.js';
import { TubeError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { ObjectKeys, type VideoRef } from './keys.js';
import { DeadlineHttpHandler, type S3Deadlines } from './s3-deadlines.js';
import { parseManifest, sliceBounds, type Manifest } from './manifest.js';

/** After a failed S3 request, S3 is skipped for this long (nginx's fail_timeout), so an outage costs one timeout, not one per request. */
const S3_DOWN_MS = 5_000;
/** DeleteObjects takes at most this many keys. */
export const DELETE_BATCH = 1000;
/** A DeleteObjects of a full batch may take S3 seconds before it answers (off the request path: prune, rm). */
const DELETE_FIRST_BYTE_MS = 30_000;

export interface S3Settings {
  endpoint: string | undefined;
  region: string;
  bucket: string;
  prefix: string;
  accessKeyId: string;
  secretAccessKey: string;
  forcePathStyle: boolean;
  checksums: 'WHEN_REQUIRED' | 'WHEN_SUPPORTED';
  deadlines: S3Deadlines;
}

export const s3SettingsFrom = (config: Config, endpoint = config.S3_ENDPOINT || undefined): S3Settings => ({
  endpoint,
  region: config.S3_REGION,
  bucket: config.S3_BUCKET,
  prefix: config.S3_PREFIX,
  accessKeyId: config.S3_ACCESS_KEY_ID,
  secretAccessKey: config.S3_SECRET_ACCESS_KEY,
  forcePathStyle: config.S3_FORCE_PATH_STYLE,
  checksums: config.S3_CHECKSUMS,
  deadlines: { connectMs: config.S3_CONNECT_TIMEOUT, firstByteMs: config.S3_FIRST_BYTE_TIMEOUT, idleMs: config.S3_IDLE_TIMEOUT },
});

/** `overrides` are for tests and tools (e.g. `maxAttempts: 1`); the service uses the settings alone. */
export function createS3Client(settings: S3Settings, overrides: Partial<S3ClientConfig> = {}): S3Client {
  const agentOptions = { keepAlive: true, maxSockets: 64 };
  return new S3Client({
    region: settings.region,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    forcePathStyle: settings.forcePathStyle,
    ...(settings.accessKeyId ? { credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey } } : {}),
    // The SDK's default (CRC32 on every request, aws-chunked stream bodies) is
    // rejected or mis-stored by several S3-compatible servers.
    requestChecksumCalculation: settings.checksums,
    responseChecksumValidation: settings.checksums,
    maxAttempts: 2,
    requestHandler: new DeadlineHttpHandler(settings.deadlines, { httpAgent: new HttpAgent(agentOptions), httpsAgent: new Agent(agentOptions) }),
    ...overrides,
  });
}

export const isNotFound = (error: unknown): boolean => {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || e?.name === 'NoSuchBucket' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
};

/**
 * The persistent tier: manifests and slices in an S3-compatible bucket. A miss
 * (no object, or an object that disagrees with the manifest) is `undefined`;
 * S3 errors are counted, logged by the caller, and open a short window in which
 * S3 is skipped, so an outage degrades to the origin instead of failing clients.
 */
export class S3Tier {
  readonly name = 's3' as const;
  readonly keys: ObjectKeys;
  readonly client: S3Client;
  readonly bucket: string;
  #downUntil = 0;
  readonly #metrics: Metrics;
  readonly #firstByteMs: number;

  constructor(settings: S3Settings, metrics: Metrics, client = createS3Client(settings)) {
    this.client = client;
    this.bucket = settings.bucket;
    this.keys = new ObjectKeys(settings.prefix);
    this.#metrics = metrics;
    this.#firstByteMs = settings.deadlines.firstByteMs;
  }

  /** False while a recent failure keeps S3 out of the request path. */
  get available(): boolean {
    return Date.now() >= this.#downUntil;
  }

  async #call<T>(operation: string, run: () => Promise<T>, options: { missIsOk?: boolean } = {}): Promise<T | undefined> {
    try {
      const result = await run();
      this.#metrics.s3Operations.inc({ operation, outcome: 'ok' });
      return result;
    } catch (error) {
      if (options.missIsOk && isNotFound(error)) {
        this.#metrics.s3Operations.inc({ operation, outcome: 'miss' });
        return undefined;
      }
      if ((error as Error)?.name === 'AbortError') throw error;
      this.#metrics.s3Operations.inc({ operation, outcome: 'error' });
      this.#downUntil = Date.now() + S3_DOWN_MS;
      throw new TubeError('S3_ERROR', `${operation}: ${(error as Error)?.message ?? error}`, { cause: error });
    }
  }

  async ensureBucket(create: boolean): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (error) {
      if (!isNotFound(error)) throw new TubeError('S3_ERROR', `bucket "${this.bucket}": ${(error as Error).message}`, { cause: error });
      if (!create) throw new TubeError('S3_ERROR', `bucket "${this.bucket}" does not exist (set S3_CREATE_BUCKET=true to create it)`);
      await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
    }
  }

  /** Readiness: the bucket answers. Throws with S3's reason. */
  async ping(): Promise<void> {
    await this.#call('head-bucket', () => this.client.send(new HeadBucketCommand({ Bucket: this.bucket })));
  }

  async getManifest(video: VideoRef, sliceBytes: number): Promise<Manifest | undefined> {
    const text = await this.getText(this.keys.manifest(video));
    return text === undefined ? undefined : parseManifest(text, { ...video, sliceBytes });
  }

  async putManifest(manifest: Manifest): Promise<void> {
    await this.putText(this.keys.manifest(manifest), JSON.stringify(manifest, null, 2), 'application/json');
  }

  async getText(key: string): Promise<string | undefined> {
    // The body is read inside the call, so a body that stalls counts as an S3 failure too.
    return this.#call('get', async () => (await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }))).Body?.transformToString(), { missIsOk: true });
  }

  async putText(key: string, body: string, contentType: string): Promise<void> {
    await this.#call('put', () => this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: contentType })));
  }

  /**
   * Streams slice `index` from byte `offset` of the slice into `push`. Returns
   * false (a miss) when the object is absent or was written for another
   * version or length; throws when S3 fails, possibly after pushing some bytes.
   */
  async streamSlice(manifest: Manifest, index: number, offset: number, push: (chunk: Buffer) => void, signal: AbortSignal): Promise<boolean> {
    const { length } = sliceBounds(manifest, index);
    const response = await this.#call(
      'get-slice',
      // Always an absolute range: some servers (s3rver) answer suffix ranges wrongly.
      () => this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.keys.slice(manifest, index), Range: `bytes=${offset}-${length - 1}` }), { abortSignal: signal }),
      { missIsOk: true },
    );
    if (!response?.Body) return false;
    const body = response.Body as AsyncIterable<Buffer> & { destroy?: () => void };
    const total = /\/(\d+)$/.exec(response.ContentRange ?? '')?.[1];
    if (Number(total) !== length || response.Metadata?.etag !== bareEtag(manifest.etag)) {
      body.destroy?.();
      this.#metrics.s3Operations.inc({ operation: 'get-slice', outcome: 'stale' });
      return false;
    }
    try {
      for await (const chunk of body) push(chunk);
    } catch (error) {
      if (signal.aborted) throw error;
      this.#downUntil = Date.now() + S3_DOWN_MS;
      throw new TubeError('S3_ERROR', `slice ${index} body: ${(error as Error).message}`, { cause: error });
    }
    return true;
  }

  /** Uploads a whole slice; the object becomes visible only once complete (a single PUT for a slice). */
  async putSlice(manifest: Manifest, index: number, bytes: Buffer): Promise<void> {
    await this.#call('put-slice', () =>
      new Upload({
        client: this.client,
        params: { Bucket: this.bucket, Key: this.keys.slice(manifest, index), Body: bytes, ContentType: 'application/octet-stream', Metadata: { etag: bareEtag(manifest.etag) } },
        queueSize: 1,
        partSize: Math.max(5 * 2 ** 20, bytes.length),
        leavePartsOnError: false,
      }).done(),
    );
  }

  async touch(video: VideoRef, at = new Date()): Promise<void> {
    await this.putText(this.keys.access(video), at.toISOString(), 'text/plain');
  }

  /** Every object under `prefix` (after key `startAfter`, when given), page by page (ListObjectsV2 pages of up to 1000). */
  async *list(prefix: string, startAfter?: string): AsyncGenerator<_Object[]> {
    let token: string | undefined;
    do {
      const page = await this.#call('list', () =>
        this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : startAfter ? { StartAfter: startAfter } : {}) }),
        ),
      );
      if (page?.Contents?.length) yield page.Contents;
      token = page?.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** Deletes keys in DeleteObjects batches; returns the keys S3 refused. */
  async deleteKeys(keys: readonly string[]): Promise<{ key: string; message: string }[]> {
    const failed: { key: string; message: string }[] = [];
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      const result = await this.#call('delete', () =>
        this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }), {
          requestTimeout: Math.max(DELETE_FIRST_BYTE_MS, this.#firstByteMs),
        }),
      );
      for (const error of result?.Errors ?? []) failed.push({ key: error.Key ?? '?', message: error.Message ?? error.Code ?? 'delete failed' });
    }
    return failed;
  }

}

const bareEtag = (etag: string) => etag.replaceAll('"', '');
