/** What every scenario gets: the options, the running systems, the backend, and ways to start more tubecache processes. */
import type { StoreTier } from '../src/cache/store-tier.js';
import type { Backend } from './backend.js';
import type { System, SystemName } from './systems/process.js';
import type { VideoDecl } from './videos.js';
import type { Config } from '../src/config.js';

export interface BenchOptions {
  quick: boolean;
  /** Measured runs per system for the load and fan-out scenarios (medians are reported). */
  runs: number;
  /** Length of one load run. */
  durationMs: number;
  /** Runs per system of the fan-out and seek-and-leave scenarios (a fresh video each). */
  repeats: number;
  /** Unmeasured load before a system's first run (JIT, caches, connections). */
  warmupMs: number;
  /** Time-to-first-byte samples per system (S3 hit). */
  ttfbSamples: number;
  /** Cold videos per system (cold miss). */
  coldSamples: number;
  fanoutClients: number;
  memoryClients: number;
  memoryVideos: number;
  memoryDurationMs: number;
  /** MEMORY_CACHE_BYTES for "many videos" (the working set is twice this). */
  manyBudget: number;
  /** CPU lists for taskset: the systems under test, and the bench with its backend. Undefined: no pinning. */
  cpus: { systems: string; bench: string } | undefined;
  /** tubecache processes sharing the port (BENCH_PROCESSES), pinned to every CPU when more than one: a per-machine figure. */
  processes: number;
  /** BENCH_PEERS=1: tubecache processes stream slices from each other (PEER_URL, PEER_TOKEN). */
  peers: boolean;
  cpuProfile: boolean;
  /** Extra environment for every tubecache process (BENCH_ENV_*), recorded with the results. */
  tubecacheEnv: Record<string, string>;
  /** Scenario ids to run (all when empty). */
  only: Set<string>;
}

export type Column = SystemName | 'baseline';

/** One line of the results table: a metric and its value per system. */
export interface Row {
  metric: string;
  values: Partial<Record<Column, string>>;
}

export interface Verdict {
  /** undefined: no target for this scenario, or it could not be measured. */
  met: boolean | undefined;
  /** The figure the target is about, e.g. "1.31× nginx". */
  measured: string;
}

export interface ScenarioReport {
  id: string;
  title: string;
  target: string;
  /** What "baseline" means in this scenario's rows, when it has one. */
  baseline?: string;
  rows: Row[];
  verdict: Verdict;
  notes: string[];
  /** Everything measured, for the JSON file. */
  raw: unknown;
}

export interface Scenario {
  id: string;
  title: string;
  /** Videos to add to the origin (and the proxies' maps) before anything starts. */
  videos: VideoDecl[];
  run(bench: Bench): Promise<ScenarioReport>;
}

export interface Bench {
  options: BenchOptions;
  backend: Backend;
  /** Signed media path per video id, as the proxies fetch it. */
  paths: Record<string, string>;
  /** tubecache first, then the anchors that are installed. */
  systems: System[];
  /** The bare node:http server (Node's ceiling), for the memory-hit scenarios only. */
  ceiling: System;
  /** Settings every tubecache process gets (S3, stand-in yt-dlp, origin allowed). */
  tubecacheEnv: Record<string, string>;
  /** The store as tubecache sees it (same bucket or DATA_DIR, same prefix), for baselines and for waiting on uploads. */
  store: StoreTier;
  /** tubecache's configuration as its processes load it (slice size, head, format). */
  config: Config;
  /** The default format (FORMATS): its name (the format part of object keys) and its yt-dlp selector. */
  format: { format: string; selector: string };
  /** Starts another tubecache process with `overrides`; the caller stops it. */
  startTubecache(label: string, overrides: Record<string, string>): Promise<System>;
  log(message: string): void;
}

/** Runs `measure` for every system, `runs` times, rotating the order each run so no system always goes first. */
export async function alternate<T>(systems: readonly System[], runs: number, measure: (system: System, run: number) => Promise<T>): Promise<Map<System, T[]>> {
  const results = new Map<System, T[]>(systems.map((system) => [system, []]));
  for (let run = 0; run < runs; run++) {
    for (let i = 0; i < systems.length; i++) {
      const system = systems[(run + i) % systems.length]!;
      results.get(system)!.push(await measure(system, run));
    }
  }
  return results;
}

export const MiB = 2 ** 20;

/** Number formatting for the table: 3 significant digits, thousands grouped. */
export function fmt(value: number, digits = 3): string {
  if (!Number.isFinite(value)) return '–';
  if (Math.abs(value) >= 10 ** digits) return Math.round(value).toLocaleString('en-US');
  return Number(value.toPrecision(digits)).toLocaleString('en-US', { maximumFractionDigits: 3 });
}

export const mb = (bytes: number) => `${fmt(bytes / 1e6)} MB`;
