import type { Config } from '../config.js';
import type { Metrics } from '../metrics.js';
import { DiskStore } from './disk-store.js';
import { S3Store, s3SettingsFrom } from './s3-store.js';
import { StoreTier } from './store-tier.js';

/**
 * The store the configuration names, opened exactly as `tubecache serve` opens
 * it, so the service and the operator commands agree on where videos live:
 * the S3 bucket when S3_ENDPOINT is set, else the disk store under DATA_DIR.
 * Close it with `tier.store.close()`.
 */
export async function openStore(config: Config, metrics: Metrics): Promise<StoreTier> {
  const store = config.S3_ENDPOINT ? new S3Store(s3SettingsFrom(config)) : await DiskStore.open(config.DATA_DIR);
  const tier = new StoreTier(store, { prefix: config.S3_PREFIX, metrics });
  // Set here, not by every StoreTier: the disk tier is one too, and is not "the store".
  metrics.sources.store = () => ({ name: tier.name, available: tier.available });
  return tier;
}
