/**
 * `npm run bench`: tubecache side by side with nginx (proxy_cache + slice) and
 * Varnish, on 127.0.0.1, against one local origin and one S3 server.
 *
 * Environment (all optional):
 *   BENCH_QUICK=1            ~1–2 minutes instead of ~10: one run per system, short windows
 *   BENCH_RUNS, BENCH_DURATION (s), BENCH_WARMUP (s)     load runs per system and their length
 *   BENCH_REPEATS            fan-out and seek-and-leave runs per system, each on a fresh video
 *   BENCH_SAMPLES, BENCH_COLD_SAMPLES                    TTFB samples (S3 hit) and cold videos per system
 *   BENCH_FANOUT_CLIENTS, BENCH_MEMORY_CLIENTS, BENCH_MEMORY_VIDEOS, BENCH_MEMORY_DURATION (s)
 *   BENCH_MANY_BUDGET        MEMORY_CACHE_BYTES of "many videos" (e.g. 64MiB; the working set is twice it)
 *   BENCH_DISK_MEMORY        MEMORY_CACHE_BYTES of "disk tier" (default 32MiB; the working set is ten times it; needs S3_ENDPOINT)
 *   BENCH_ONLY=1,5           run only these scenarios (BENCH_ONLY=6,10: the two memory-budget scenarios)
 *   BENCH_LABEL=memory       results go to bench/results/<label>-<date>.json and .md instead of <date>.*
 *   BENCH_PRUNE_VIDEOS       video counts of the prune scenario (default 20000,100000; `npm run bench:prune` runs it alone)
 *   BENCH_PIN=0              do not pin the systems and the bench to separate CPUs
 *   BENCH_PROCESSES=2        tubecache as that many processes on one port (node:cluster), on every CPU: a per-machine figure (BENCH_ONLY=1,2)
 *   BENCH_PEERS=1            tubecache processes stream slices from each other (PEER_URL, PEER_TOKEN; scenario 11)
 *   BENCH_CPU_PROFILE=1      tubecache processes write V8 CPU profiles (kept with BENCH_KEEP)
 *   BENCH_ENV_<NAME>=value   sets NAME for the tubecache processes, for experiments (BENCH_ENV_NODE_OPTIONS=--max-semi-space-size=2)
 *   BENCH_KEEP=1             keep the temporary directory (logs, configs, profiles)
 *   BENCH_NGINX, BENCH_VARNISHD   other binaries (`none`: leave that column out)
 *   S3_ENDPOINT (+ S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, S3_BUCKET, S3_REGION, S3_PREFIX)   an S3 bucket instead of the disk store under the bench's directory
 *                            (scenario 11, nodes on one bucket, runs only then: it needs conditional writes)
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus as cpuList, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStore } from '../src/cache/open-store.js';
import { loadConfig, SETTINGS } from '../src/config.js';
import { createMetrics } from '../src/metrics.js';
import { parseSize } from '../src/units.js';
import { FAKE_YTDLP_PATH } from '../test/helpers/origin.js';
import { startBackend } from './backend.js';
import { type Bench, type BenchOptions, type Scenario, type ScenarioReport } from './context.js';
import { describeMachine, markdown } from './report.js';
import { clusterScenario } from './scenarios/cluster.js';
import { coldMissScenario } from './scenarios/cold-miss.js';
import { diskTierScenario } from './scenarios/disk-tier.js';
import { fanoutScenario } from './scenarios/fanout.js';
import { manyVideosScenario } from './scenarios/many-videos.js';
import { pruneScenario, pruneSizes } from './scenarios/prune.js';
import { memoryBoundScenario, slowReadersScenario } from './scenarios/memory-bound.js';
import { memoryHitScenarios } from './scenarios/memory-hit.js';
import { s3HitScenario } from './scenarios/s3-hit.js';
import { seekLeaveScenario } from './scenarios/seek-leave.js';
import { findBinary, type System } from './systems/process.js';
import { NGINX_INSTALL_HINT, nginxBinary, startNginx } from './systems/nginx.js';
import { buildTubecache, startTubecache } from './systems/tubecache.js';
import { startBareNode } from './systems/bare-node.js';
import { VARNISH_INSTALL_HINT, varnishBinary, startVarnish } from './systems/varnish.js';
import type { VideoDecl } from './videos.js';

const started = performance.now();
const env = process.env;
const log = (message: string) => process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(0).padStart(3)}s] ${message}\n`);

function readOptions(): BenchOptions {
  const quick = /^(1|true|yes)$/i.test(env.BENCH_QUICK ?? '');
  const number = (name: string, full: number, short: number) => {
    const raw = env[name];
    const value = raw === undefined || raw === '' ? (quick ? short : full) : Number(raw);
    if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got "${raw}"`);
    return value;
  };
  const manyBudget = parseSize(env.BENCH_MANY_BUDGET ?? (quick ? '32MiB' : '100MiB'));
  if (!manyBudget) throw new Error(`BENCH_MANY_BUDGET must be a size such as 64MiB, got "${env.BENCH_MANY_BUDGET}"`);
  const cores = cpuList().length;
  const pin = env.BENCH_PIN !== '0' && cores >= 2 && findBinary(['taskset']) !== undefined;
  return {
    quick,
    runs: number('BENCH_RUNS', 5, 1),
    durationMs: number('BENCH_DURATION', 4, 2) * 1000,
    repeats: number('BENCH_REPEATS', 3, 1),
    warmupMs: number('BENCH_WARMUP', 2, 1) * 1000,
    ttfbSamples: number('BENCH_SAMPLES', 40, 15),
    coldSamples: number('BENCH_COLD_SAMPLES', 12, 4),
    fanoutClients: number('BENCH_FANOUT_CLIENTS', 100, 100),
    memoryClients: number('BENCH_MEMORY_CLIENTS', 200, 200),
    memoryVideos: number('BENCH_MEMORY_VIDEOS', 50, 50),
    memoryDurationMs: number('BENCH_MEMORY_DURATION', 20, 8) * 1000,
    manyBudget,
    // One CPU for the system under test (tubecache is one event loop), the rest for the bench.
    cpus: pin ? { systems: String(cores - 1), bench: cores === 2 ? '0' : `0-${cores - 2}` } : undefined,
    cpuProfile: env.BENCH_CPU_PROFILE === '1',
    processes: number('BENCH_PROCESSES', 1, 1),
    peers: /^(1|true|yes)$/i.test(env.BENCH_PEERS ?? ''),
    tubecacheEnv: Object.fromEntries(Object.entries(env).flatMap(([name, value]) => (name.startsWith('BENCH_ENV_') && value !== undefined ? [[name.slice('BENCH_ENV_'.length), value]] : []))),
    only: new Set((env.BENCH_ONLY ?? '').split(',').map((id) => id.trim()).filter(Boolean)),
  };
}

function scenarios(options: BenchOptions): Scenario[] {
  return [
    ...memoryHitScenarios(),
    s3HitScenario(),
    coldMissScenario(options.coldSamples),
    fanoutScenario(options.fanoutClients, options.repeats),
    memoryBoundScenario(options.memoryClients, options.memoryVideos),
    seekLeaveScenario(options.repeats),
    manyVideosScenario(options.manyBudget),
    pruneScenario(pruneSizes(env.BENCH_PRUNE_VIDEOS)),
    slowReadersScenario(options.memoryClients),
    // Nodes share fetches through S3 leases: on the disk store the scenario is left out (logged in main).
    ...(env.S3_ENDPOINT ? [clusterScenario(options.repeats, options.peers)] : []),
    diskTierScenario(parseSize(env.BENCH_DISK_MEMORY ?? '32MiB')),
  ];
}

async function main(): Promise<void> {
  // The SDK's notice that Node 20 support ends in 2027 says nothing about the bench; keep the output to the numbers.
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const options = readOptions();
  if (options.cpus) spawnSync('taskset', ['-a', '-p', '-c', options.cpus.bench, String(process.pid)], { stdio: 'ignore' });
  const selected = scenarios(options).filter((scenario) => options.only.size === 0 || options.only.has(scenario.id));
  if (!env.S3_ENDPOINT) log('scenario 11 (nodes on one bucket) left out: it needs S3 with conditional writes (S3_ENDPOINT)');
  const dir = mkdtempSync(join(tmpdir(), 'tubecache-bench-'));
  log(`working directory ${dir}${options.quick ? ' (quick mode)' : ''}`);

  const external = env.S3_ENDPOINT;
  const backend = await startBackend();
  const running: System[] = [];
  const failures: { id: string; error: string }[] = [];
  const reports: ScenarioReport[] = [];
  const missing: Record<string, string> = {};
  try {
    const decls = new Map<string, VideoDecl>();
    for (const scenario of selected) for (const video of scenario.videos) decls.set(video.id, video);
    const paths = await backend.call('addVideos', [...decls.values()]);

    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const s3Env: Record<string, string> = external
      ? Object.fromEntries(
          Object.keys(SETTINGS).filter((name) => name.startsWith('S3_')).flatMap((name) => (env[name] ? [[name, env[name]!]] : [])),
        )
      : { DATA_DIR: join(dir, 'data') };
    const tubecacheEnv: Record<string, string> = {
      ...s3Env,
      // A fresh prefix per run: nothing persisted by an earlier run is a hit.
      S3_PREFIX: `${env.S3_PREFIX ?? ''}bench-${stamp}/`,
      YTDLP_PATH: FAKE_YTDLP_PATH,
      YTDLP_URL_TEMPLATE: `${backend.originUrl}/watch?v={id}`,
      ORIGIN_ALLOWED_HOSTS: '127.0.0.1',
      ORIGIN_RANGE_QUERY_HOSTS: '',
      // Warnings only: nginx runs with access_log off, so neither pays for a line per request.
      LOG_LEVEL: 'warn',
      ...options.tubecacheEnv,
    };
    const config = loadConfig(tubecacheEnv);
    const store = await openStore(config, createMetrics());

    const build = buildTubecache();
    const startOne = async (label: string, overrides: Record<string, string>) => {
      const cpus = options.processes > 1 && options.cpus ? `0-${cpuList().length - 1}` : options.cpus?.systems;
      const system = await startTubecache({ build, env: { ...tubecacheEnv, ...overrides }, cpus, dir, label, cpuProfile: options.cpuProfile, processes: options.processes, peers: options.peers });
      running.push(system);
      const stop = system.stop;
      system.stop = async () => {
        running.splice(running.indexOf(system), 1);
        await stop();
      };
      return system;
    };
    const systems: System[] = [await startOne('tubecache', {})];
    const edge = { originUrl: backend.originUrl, token: backend.token, paths, cpus: options.cpus?.systems, dir };
    const nginx = nginxBinary();
    if (nginx) systems.push(await startNginx(nginx, edge));
    else (missing.nginx = 'nginx not installed'), log(NGINX_INSTALL_HINT);
    const varnish = varnishBinary();
    if (varnish) systems.push(await startVarnish(varnish, edge));
    else (missing.varnish = 'Varnish not installed'), log(VARNISH_INSTALL_HINT);
    const ceiling = await startBareNode(edge);
    running.push(...systems.slice(1), ceiling);
    log(`systems: ${[...systems, ceiling].map((system) => `${system.name} ${system.url}`).join(', ')}`);

    const machine = describeMachine([...systems, ceiling], missing);
    const bench: Bench = { options, backend, paths, systems, ceiling, tubecacheEnv, store, config, format: { format: config.FORMATS.default, selector: config.FORMATS.selectors.get(config.FORMATS.default)! }, startTubecache: startOne, log };
    for (const scenario of selected) {
      log(`scenario ${scenario.id}: ${scenario.title}`);
      try {
        reports.push(await scenario.run(bench));
      } catch (error) {
        log(`scenario ${scenario.id} failed: ${(error as Error).stack}`);
        failures.push({ id: scenario.id, error: (error as Error).message });
      }
    }
    await store.store.close();

    const date = new Date().toISOString().slice(0, 10) + (options.quick ? '-quick' : '');
    const name = env.BENCH_LABEL ? `${env.BENCH_LABEL}-${date}` : date;
    const elapsedS = (performance.now() - started) / 1000;
    const table = markdown({ date, machine, options, reports, failures, elapsedS });
    const out = fileURLToPath(new URL('./results/', import.meta.url));
    mkdirSync(out, { recursive: true });
    const { only, ...serializable } = options;
    writeFileSync(join(out, `${name}.json`), `${JSON.stringify({ date, machine, options: { ...serializable, only: [...only] }, elapsedS, reports, failures }, null, 2)}\n`);
    writeFileSync(join(out, `${name}.md`), table);
    process.stdout.write(`\n${table}\nwritten to bench/results/${name}.json and .md\n`);
    if (failures.length) process.exitCode = 1;
  } finally {
    for (const system of [...running].reverse()) await system.stop().catch((error: Error) => log(`stopping ${system.name}: ${error.message}`));
    await backend.close();
    if (env.BENCH_KEEP === '1' || failures.length) log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

await main();
