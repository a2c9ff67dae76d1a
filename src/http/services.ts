import type { Logger } from 'pino';
import type { DiskTier } from '../cache/disk-tier.js';
import type { MemoryTier } from '../cache/memory-tier.js';
import type { StoreTier } from '../cache/store-tier.js';
import type { TieredCache } from '../cache/tiered-cache.js';
import type { Config } from '../config.js';
import type { Metrics } from '../metrics.js';
import type { Pruner } from '../ops/prune.js';
import type { Resolver } from '../origin/resolver.js';

export interface ReadinessCheck {
  ok: boolean;
  detail?: string;
}

/** What the HTTP apps use of a running service (src/service.ts builds it; http/ does not import it). */
export interface AppServices {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly memory: MemoryTier;
  readonly store: StoreTier;
  readonly disk: DiskTier | undefined;
  readonly cache: TieredCache;
  readonly resolver: Resolver;
  readonly pruner: Pruner;
  readiness(): Promise<Record<string, ReadinessCheck>>;
}
