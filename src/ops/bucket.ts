import type { EmbeddedS3 } from '../cache/embedded-s3.js';
import { S3Tier, s3SettingsFrom } from '../cache/s3-tier.js';
import type { Config } from '../config.js';
import type { Metrics } from '../metrics.js';

/** The bucket the configuration names, and how to let go of it. */
export interface Bucket {
  readonly s3: S3Tier;
  /** Set when S3_ENDPOINT is empty and this process runs the embedded S3 server. */
  readonly embedded: EmbeddedS3 | undefined;
  /** Destroys the client's sockets and stops the embedded server. */
  close(): Promise<void>;
}

/**
 * Opens the bucket exactly as `tubecache serve` does, so the service and the
 * operator commands agree on where videos live: S3_ENDPOINT when set, else the
 * embedded S3 server (s3rver) on DATA_DIR.
 */
export async function openBucket(config: Config, metrics: Metrics): Promise<Bucket> {
  // Imported only when used: s3rver and its dependencies add ~30 MB to the RSS of every process that has an S3_ENDPOINT.
  const embedded = config.S3_ENDPOINT
    ? undefined
    : await (await import('../cache/embedded-s3.js')).startEmbeddedS3({ directory: config.DATA_DIR, bucket: config.S3_BUCKET, silent: true });
  const settings = embedded
    ? { ...s3SettingsFrom(config, embedded.endpoint), accessKeyId: embedded.accessKeyId, secretAccessKey: embedded.secretAccessKey, forcePathStyle: true }
    : s3SettingsFrom(config);
  const s3 = new S3Tier(settings, metrics);
  return {
    s3,
    embedded,
    async close() {
      s3.client.destroy();
      await embedded?.close();
    },
  };
}
