import { Agent } from 'node:https';
import { Agent as HttpAgent } from 'node:http';
import { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import type { Config } from '../config.js';
import { TubeError } from '../errors.js';
import { DeadlineHttpHandler, type S3Deadlines } from './s3-deadlines.js';
import { bodyOf, collectBody, errorBoundary } from './store-util.js';
import { PAGE_MAX, type ByteRange, type ListOptions, type ListPage, type ObjectBody, type ObjectHead, type ObjectStore, type PutOptions } from './store.js';

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
export function createS3Client(settings: S3Settings, overrides: Partial<S3ClientConfig> = {}, maxSockets = 64): S3Client {
  const agentOptions = { keepAlive: true, maxSockets };
  return new S3Client({
    region: settings.region,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    forcePathStyle: settings.forcePathStyle,
    ...(settings.accessKeyId ? { credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey } } : {}),
    // The SDK's default (CRC32 on every request, aws-chunked stream bodies) is
    // rejected or mis-stored by several S3-compatible servers.
    requestChecksumCalculation: settings.checksums,
    responseChecksumValidation: settings.checksums,
    // A streamed put is not retried (its bytes are gone once sent); the SDK says so on the console unless given a logger.
    logger: QUIET,
    maxAttempts: 2,
    requestHandler: new DeadlineHttpHandler(settings.deadlines, { httpAgent: new HttpAgent(agentOptions), httpsAgent: new Agent(agentOptions) }),
    ...overrides,
  });
}

const QUIET = { debug() {}, info() {}, warn() {}, error() {} };
/** Connections for streamed puts (S3Store.#streamClient): at most one per slice being fetched under a lease. */
const STREAM_SOCKETS = 256;

/** A DeleteObjects of a full batch may take S3 seconds before it answers (off the request path: prune, rm). */
const DELETE_FIRST_BYTE_MS = 30_000;

export const isNotFound = (error: unknown): boolean => {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || e?.name === 'NoSuchBucket' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
};

/**
 * An ObjectStore in an S3-compatible bucket (AWS, Ceph RGW, MinIO). SDK errors
 * are translated here and nowhere else: NoSuchKey/404 is a miss, 412 a
 * PRECONDITION_FAILED, anything else a STORE_ERROR carrying the SDK error as
 * its cause. Puts are one PutObject: the objects are at most a slice, and a
 * single PUT is atomic (visible complete or not at all) where a multipart
 * upload would cost three requests for the same guarantee.
 */
export class S3Store implements ObjectStore {
  readonly kind = 's3' as const;
  readonly conditionalWrites = true;
  readonly location: string;
  readonly client: S3Client;
  readonly bucket: string;
  readonly #firstByteMs: number;
  /**
   * Streamed puts hold a connection for as long as their slice takes to
   * arrive: a pool of their own, so they never leave the reads, lease writes
   * and polls queueing for a socket (and failing their deadlines).
   */
  readonly #streamClient: S3Client;

  constructor(settings: S3Settings, client = createS3Client(settings)) {
    this.client = client;
    this.#streamClient = createS3Client(settings, {}, STREAM_SOCKETS);
    this.bucket = settings.bucket;
    this.#firstByteMs = settings.deadlines.firstByteMs;
    this.location = `${settings.endpoint ?? 'AWS S3'} bucket ${settings.bucket}`;
  }

  async ensureBucket(create: boolean): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (error) {
      if (!isNotFound(error)) throw new TubeError('STORE_ERROR', `bucket "${this.bucket}": ${(error as Error).message}`, { cause: error });
      if (!create) throw new TubeError('STORE_ERROR', `bucket "${this.bucket}" does not exist (set S3_CREATE_BUCKET=true to create it)`);
      await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
    }
  }

  async ping(): Promise<void> {
    await translate('ping', () => this.client.send(new HeadBucketCommand({ Bucket: this.bucket })));
  }

  async get(key: string, range?: ByteRange, signal?: AbortSignal): Promise<ObjectBody | undefined> {
    // Always an absolute range: some servers answer suffix ranges wrongly.
    const header = range ? `bytes=${range.start}-${range.end ?? ''}` : undefined;
    let response: GetObjectCommandOutput;
    try {
      response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: header }), { abortSignal: signal });
    } catch (error) {
      if (isNotFound(error)) return undefined;
      // A range that starts past the end: the object is there, with nothing to read.
      if (status(error) === 416) {
        const head = await this.head(key);
        return head && { ...head, start: head.size, end: head.size - 1, body: bodyOf(), cancel() {} };
      }
      throw translated(`get ${key}`, error);
    }
    const stream = response.Body as (AsyncIterable<Buffer> & { destroy?: () => void }) | undefined;
    const total = Number(/\/(\d+)$/.exec(response.ContentRange ?? '')?.[1] ?? response.ContentLength ?? 0);
    const start = Number(/bytes (\d+)-/.exec(response.ContentRange ?? '')?.[1] ?? 0);
    const length = response.ContentLength ?? 0;
    async function* body(): AsyncGenerator<Buffer> {
      if (!stream) return;
      try {
        for await (const chunk of stream) yield chunk;
      } catch (error) {
        if (signal?.aborted) throw error;
        throw new TubeError('STORE_ERROR', `get ${key} body: ${(error as Error).message}`, { cause: error });
      }
    }
    return {
      key,
      size: total,
      lastModified: response.LastModified?.getTime() ?? 0,
      etag: response.ETag ?? '',
      contentType: response.ContentType,
      metadata: response.Metadata ?? {},
      start,
      end: start + length - 1,
      body: body(),
      cancel: () => stream?.destroy?.(),
    };
  }

  async head(key: string): Promise<ObjectHead | undefined> {
    const command = new HeadObjectCommand({ Bucket: this.bucket, Key: key });
    let date: string | undefined;
    // The SDK drops the Date header from its output; leases need the server's clock (src/cache/lease.ts).
    command.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        date = (result.response as { headers?: Record<string, string> }).headers?.date;
        return result;
      },
      { step: 'deserialize' },
    );
    const response = await translate(`head ${key}`, () => this.client.send(command), true);
    if (!response) return undefined;
    const serverTime = date === undefined ? Number.NaN : Date.parse(date);
    return {
      key,
      size: response.ContentLength ?? 0,
      lastModified: response.LastModified?.getTime() ?? 0,
      etag: response.ETag ?? '',
      contentType: response.ContentType,
      metadata: response.Metadata ?? {},
      ...(Number.isFinite(serverTime) && { serverTime }),
    };
  }

  async put(key: string, body: Buffer | AsyncIterable<Buffer>, options: PutOptions = {}): Promise<{ etag: string }> {
    // PutObject needs the length first: a stream of known length goes as it comes (a slice still arriving), else it is collected.
    const streamed = !Buffer.isBuffer(body) && options.length !== undefined;
    const bytes = streamed ? undefined : await collectBody(body, options.signal);
    // A body that fails (its slice's fetch did) aborts the put: the failure is the body's, not the store's.
    let bodyFailure: unknown;
    const watched = async function* () {
      try {
        yield* body;
      } catch (error) {
        bodyFailure = error;
        throw error;
      }
    };
    const source = bytes ? undefined : Readable.from(watched(), { objectMode: false });
    const client = source ? this.#streamClient : this.client;
    // Aborted when the put fails: S3 may refuse a streamed body before reading it all, and what is still
    // queued in the socket are views of a slice whose owner lets it go (and frees it) once this settles.
    const failed = new AbortController();
    const abortSignal = options.signal ? AbortSignal.any([options.signal, failed.signal]) : failed.signal;
    const response = await translate(`put ${key}`, () =>
      client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: bytes ?? source,
          ContentLength: bytes?.length ?? options.length,
          ContentType: options.contentType,
          Metadata: options.metadata ? { ...options.metadata } : undefined,
          IfNoneMatch: options.ifNoneMatch,
          // Bare: Ceph RGW refuses a quoted etag in If-Match (412 for the very etag it returned).
          IfMatch: options.ifMatch?.replaceAll('"', ''),
        }),
        { abortSignal },
      ),
    )
      .catch((error: unknown) => {
        failed.abort(error);
        throw bodyFailure ?? error;
      })
      // The SDK may have wrapped the body (aws-chunked checksums) and dropped only its wrapper: let the source go too.
      .finally(() => source?.destroy());
    return { etag: response.ETag ?? '' };
  }

  async list(options: ListOptions): Promise<ListPage> {
    const page = await translate(`list ${options.prefix}`, () =>
      this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: options.prefix,
          MaxKeys: Math.min(options.limit ?? PAGE_MAX, PAGE_MAX),
          ...(options.cursor ? { ContinuationToken: options.cursor } : options.startAfter ? { StartAfter: options.startAfter } : {}),
        }),
      ),
    );
    return {
      objects: (page.Contents ?? []).flatMap((entry) => (entry.Key ? [{ key: entry.Key, size: entry.Size ?? 0, lastModified: entry.LastModified?.getTime() ?? 0 }] : [])),
      cursor: page.IsTruncated ? page.NextContinuationToken : undefined,
    };
  }

  async delete(keys: readonly string[]): Promise<{ key: string; message: string }[]> {
    const failed: { key: string; message: string }[] = [];
    for (let i = 0; i < keys.length; i += PAGE_MAX) {
      const batch = keys.slice(i, i + PAGE_MAX);
      const result = await translate('delete', () =>
        this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }), {
          requestTimeout: Math.max(DELETE_FIRST_BYTE_MS, this.#firstByteMs),
        }),
      );
      for (const error of result.Errors ?? []) failed.push({ key: error.Key ?? '?', message: error.Message ?? error.Code ?? 'delete failed' });
    }
    return failed;
  }

  async close(): Promise<void> {
    this.client.destroy();
    this.#streamClient.destroy();
  }
}

const status = (error: unknown) => (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;

function translated(what: string, error: unknown): Error {
  if ((error as Error)?.name === 'AbortError') return error as Error;
  if (status(error) === 412 || status(error) === 409) return new TubeError('PRECONDITION_FAILED', what, { cause: error });
  return new TubeError('STORE_ERROR', `S3 ${what}: ${(error as Error)?.message ?? error}`, { cause: error });
}

const translate = errorBoundary(isNotFound, translated);
