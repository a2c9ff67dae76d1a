import { createCipheriv } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { isIPv6 } from 'node:net';
import { resolve } from 'node:path';
import S3rver from 's3rver';

/**
 * An S3-compatible server (s3rver) running inside this process, so that
 * `tubecache serve` with an empty S3_ENDPOINT still has a persistent second
 * tier under DATA_DIR with nothing else installed. The test helper
 * (test/helpers/s3.ts) uses it too when neither an external S3 nor Docker is
 * available.
 *
 * s3rver's quirks that callers must know about:
 * - it accepts only the access key and secret `S3RVER`;
 * - the AWS SDK must use `requestChecksumCalculation` / `responseChecksumValidation`
 *   `WHEN_REQUIRED`, or streamed bodies are stored with their aws-chunked framing;
 * - ListObjectsV2 continuation tokens are DES-encrypted, which OpenSSL 3 only
 *   offers with `node --openssl-legacy-provider` (a warning is emitted if not);
 * - it ignores `If-None-Match` on PUT and mis-answers suffix ranges (`bytes=-N`).
 */

export interface EmbeddedS3Options {
  /** Where objects are kept; created if missing. */
  directory: string;
  /** Address to listen on; default 127.0.0.1. */
  host?: string;
  /** Port; default 0 (an ephemeral port). */
  port?: number;
  /** Bucket to create at start-up if it does not exist. */
  bucket?: string;
  /** Suppress s3rver's request log and error output; default true. */
  silent?: boolean;
}

export interface EmbeddedS3 {
  /** e.g. `http://127.0.0.1:39127`; use with forcePathStyle. */
  endpoint: string;
  accessKeyId: 'S3RVER';
  secretAccessKey: 'S3RVER';
  /** Stops listening, drops every open (keep-alive) connection and resolves once the port is free. Idempotent. */
  close(): Promise<void>;
}

let legacyCryptoChecked = false;

/** s3rver's ListObjectsV2 continuation tokens need DES; without the legacy provider pagination fails with a 500. */
function checkLegacyCrypto(): void {
  if (legacyCryptoChecked) return;
  legacyCryptoChecked = true;
  try {
    createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
  } catch {
    process.emitWarning(
      'DES is unavailable: the embedded S3 server cannot paginate listings of more than 1000 keys. Run node with --openssl-legacy-provider.',
      { code: 'TUBECACHE_S3RVER_DES' },
    );
  }
}

/** The host clients should connect to: a wildcard listen address is reached through loopback. */
function clientHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return isIPv6(host) ? `[${host}]` : host;
}

export async function startEmbeddedS3(options: EmbeddedS3Options): Promise<EmbeddedS3> {
  checkLegacyCrypto();
  const directory = resolve(options.directory);
  await mkdir(directory, { recursive: true });
  const host = options.host ?? '127.0.0.1';

  const s3rver = new S3rver({
    address: host,
    port: options.port ?? 0,
    directory,
    silent: options.silent ?? true,
    // Buckets only by path (http://host:port/bucket/key). With vhost detection on,
    // a request to a host name other than localhost (say, a container name) would
    // be read as a virtual-hosted bucket.
    vhostBuckets: false,
    resetOnClose: false,
    configureBuckets: options.bucket ? [{ name: options.bucket }] : [],
  });

  const address = await s3rver.run();
  const server = s3rver.httpServer;
  if (!server) throw new Error('s3rver started without an HTTP server');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolveClose, rejectClose) => {
      // close() stops accepting and resolves once every connection has ended;
      // closeAllConnections() ends idle keep-alive sockets and in-flight requests
      // now instead of when the clients let go of them.
      server.close((error) => (error ? rejectClose(error) : resolveClose()));
      server.closeAllConnections();
    });
    return closing;
  };

  return {
    endpoint: `http://${clientHost(host)}:${address.port}`,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    close,
  };
}
