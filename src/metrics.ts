import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type TierName = 'memory' | 'disk' | 's3' | 'origin';

/**
 * Every counter tubecache exposes on /metrics. One registry per service so
 * several services can live in one process (tests). Labels are bounded: tiers,
 * outcomes, operation kinds and the configured format names, never video ids.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  /** Filled in by the parts that own the numbers; read when /metrics is scraped. */
  const sources: {
    memory?: () => { bytes: number; entries: number; budget: number; live: number; pooled: number };
    uploadQueue?: () => number;
    store?: () => { name: string; available: boolean };
    disk?: () => { bytes: number; entries: number; budget: number; queued: number };
  } = {};
  return {
    sources,
    registry,
    requests: new Counter({ name: 'tubecache_requests_total', help: 'Proxy responses by the X-Cache-Status they carried and the format (FORMATS name) asked', labelNames: ['status', 'format'], registers }),
    bytesServed: new Counter({ name: 'tubecache_served_bytes_total', help: 'Body bytes sent to clients, by the tier they came from and the format (FORMATS name)', labelNames: ['tier', 'format'], registers }),
    sliceReads: new Counter({ name: 'tubecache_slice_reads_total', help: 'Slices read by clients, by the tier that supplied them', labelNames: ['tier'], registers }),
    originRequests: new Counter({ name: 'tubecache_origin_requests_total', help: 'Requests to the media origin by outcome', labelNames: ['outcome'], registers }),
    originBytes: new Counter({ name: 'tubecache_origin_bytes_total', help: 'Bytes received from the media origin', registers }),
    flightJoins: new Counter({ name: 'tubecache_inflight_joins_total', help: 'Readers that joined a slice fetch already in flight', registers }),
    flightsAborted: new Counter({ name: 'tubecache_inflight_aborted_total', help: 'Slice fetches stopped because no reader or upload needed them', registers }),
    ytdlpRuns: new Counter({ name: 'tubecache_ytdlp_runs_total', help: 'yt-dlp runs by outcome', labelNames: ['outcome'], registers }),
    requestSeconds: new Histogram({
      name: 'tubecache_request_duration_seconds',
      help: 'Time from request to the last byte handed to the socket, by route class and X-Cache-Status (none off /proxy)',
      labelNames: ['route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    }),
    firstByteSeconds: new Histogram({
      name: 'tubecache_first_byte_seconds',
      help: 'Proxy GETs: time from request to the first body byte, by X-Cache-Status',
      labelNames: ['status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20],
      registers,
    }),
    storeSeconds: new Histogram({
      name: 'tubecache_store_operation_duration_seconds',
      help: 'Object store (disk or S3) request time (to the first bytes for reads) by store, operation and outcome',
      labelNames: ['store', 'operation', 'outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    originFirstByteSeconds: new Histogram({
      name: 'tubecache_origin_first_byte_seconds',
      help: 'Media origin requests: time to the response headers',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    ytdlpSeconds: new Histogram({ name: 'tubecache_ytdlp_duration_seconds', help: 'yt-dlp run time by outcome', labelNames: ['outcome'], buckets: [0.25, 0.5, 1, 2, 4, 8, 16, 32], registers }),
    resolveCache: new Counter({ name: 'tubecache_resolve_cache_total', help: 'Resolutions answered from memory (hit), by a running yt-dlp (joined) or by a new run (miss)', labelNames: ['result'], registers }),
    storeOperations: new Counter({ name: 'tubecache_store_operations_total', help: 'Object store (disk or S3) requests by store, operation and outcome', labelNames: ['store', 'operation', 'outcome'], registers }),
    integrityFailures: new Counter({ name: 'tubecache_integrity_failures_total', help: 'Stored slices that failed their digest check (dropped, served from the origin)', labelNames: ['store'], registers }),
    storeAvailable: new Gauge({
      name: 'tubecache_store_available',
      help: '1 while the store (disk or S3) is used; 0 during the skip window that follows a failed store request',
      labelNames: ['store'],
      registers,
      collect() {
        const store = sources.store?.();
        if (store) this.set({ store: store.name }, store.available ? 1 : 0);
      },
    }),
    uploadQueue: new Gauge({ name: 'tubecache_upload_queue_length', help: 'Slices waiting for upload', registers, collect() { this.set(sources.uploadQueue?.() ?? 0); } }),
    uploadsDropped: new Counter({ name: 'tubecache_uploads_dropped_total', help: 'Slices not uploaded because the queue was full or S3 was down', registers }),
    uploads: new Counter({ name: 'tubecache_uploads_total', help: 'Slice uploads by outcome', labelNames: ['outcome'], registers }),
    leases: new Counter({ name: 'tubecache_leases_total', help: 'Slice lease claims between nodes on one bucket, by outcome', labelNames: ['outcome'], registers }),
    peerReads: new Counter({ name: 'tubecache_peer_reads_total', help: 'Slices asked of the node holding their lease (PEER_URL), by outcome: streamed, absent (it had none), failed', labelNames: ['outcome'], registers }),
    memoryBytes: new Gauge({ name: 'tubecache_memory_cache_bytes', help: 'Bytes of the slices cached by the memory tier (a part of tubecache_slice_bytes_live)', registers, collect() { this.set(sources.memory?.().bytes ?? 0); } }),
    memoryBudget: new Gauge({ name: 'tubecache_memory_cache_budget_bytes', help: 'Byte budget of the memory tier (MEMORY_CACHE_BYTES)', registers, collect() { this.set(sources.memory?.().budget ?? 0); } }),
    sliceBytesLive: new Gauge({
      name: 'tubecache_slice_bytes_live',
      help: 'Slice bytes alive in the process (cached, being filled, held by readers, passing through, waiting for upload), never above MEMORY_CACHE_BYTES',
      registers,
      collect() {
        this.set(sources.memory?.().live ?? 0);
      },
    }),
    sliceBytesPooled: new Gauge({
      name: 'tubecache_slice_bytes_pooled',
      help: 'The part of tubecache_slice_bytes_live that is released slice Buffers kept for reuse',
      registers,
      collect() {
        this.set(sources.memory?.().pooled ?? 0);
      },
    }),
    slicesPassedThrough: new Counter({ name: 'tubecache_slices_passed_through_total', help: 'Slices streamed to one reader without being kept, because MEMORY_CACHE_BYTES had no room for them', registers }),
    memoryEntries: new Gauge({ name: 'tubecache_memory_cache_entries', help: 'Slices and manifests held by the memory tier', registers, collect() { this.set(sources.memory?.().entries ?? 0); } }),
    memoryEvictions: new Counter({ name: 'tubecache_memory_cache_evictions_total', help: 'Cached slices dropped to make room in MEMORY_CACHE_BYTES', registers }),
    diskBytes: new Gauge({ name: 'tubecache_disk_cache_bytes', help: 'Bytes on disk held by the disk tier (DISK_CACHE_DIR)', registers, collect() { this.set(sources.disk?.().bytes ?? 0); } }),
    diskBudget: new Gauge({ name: 'tubecache_disk_cache_budget_bytes', help: 'Byte budget of the disk tier (DISK_CACHE_BYTES; 0 without a disk tier)', registers, collect() { this.set(sources.disk?.().budget ?? 0); } }),
    diskEntries: new Gauge({ name: 'tubecache_disk_cache_entries', help: 'Files (slices and manifests) held by the disk tier', registers, collect() { this.set(sources.disk?.().entries ?? 0); } }),
    diskQueue: new Gauge({ name: 'tubecache_disk_cache_queue_length', help: 'Slices and manifests waiting to be written to the disk tier', registers, collect() { this.set(sources.disk?.().queued ?? 0); } }),
    diskEvictions: new Counter({ name: 'tubecache_disk_cache_evictions_total', help: 'Files evicted from the disk tier to stay in budget (least recently read first)', registers }),
    diskWrites: new Counter({ name: 'tubecache_disk_cache_writes_total', help: 'Writes to the disk tier by outcome', labelNames: ['outcome'], registers }),
    diskWritesDropped: new Counter({ name: 'tubecache_disk_cache_writes_dropped_total', help: 'Slices and manifests not written to the disk tier because its queue was full', registers }),
    prefetches: new Counter({ name: 'tubecache_prefetch_requests_total', help: 'POST /prefetch answers: accepted (queued), joined (already queued or running), refused (429, queue full)', labelNames: ['outcome'], registers }),
    pruneRuns: new Counter({ name: 'tubecache_prune_runs_total', help: 'Prune runs by outcome', labelNames: ['outcome'], registers }),
    pruneDeleted: new Counter({ name: 'tubecache_prune_deleted_objects_total', help: 'Objects deleted by prune', registers }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
