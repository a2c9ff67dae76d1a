/**
 * Scenarios 1 and 2: a video every system already holds, served as fast as a
 * closed loop of keep-alive clients can take it — whole, and as 256 KiB ranges
 * at random offsets. The bare node:http server (bench.ceiling) runs beside the
 * anchors: how close tubecache comes to what Node itself can do on one core.
 */
import { alternate, fmt, type Bench, type Row, type Scenario, type ScenarioReport } from '../context.js';
import { runLoad, type LoadResult } from '../load.js';
import { probe } from '../probe.js';
import { median } from '../stats.js';
import { cpuSeconds, type System } from '../systems/process.js';
import { newVideoId, sha256, VIDEO_KINDS, videoBytes, type VideoDecl } from '../videos.js';

const RANGE_BYTES = 256 * 1024;
const TARGET = '≥ 0.9× bare node and ≥ 1.0× nginx (req/s); stretch ≥ 1.0× Varnish';
/** Share of the bare node:http server's req/s that tubecache is to reach. */
const OF_CEILING = 0.9;

interface Measured extends LoadResult {
  cpuSeconds: number;
}

export function memoryHitScenarios(): Scenario[] {
  const id = newVideoId('hit');
  const videos: VideoDecl[] = [{ id, kind: 'short' }];
  const size = VIDEO_KINDS.short.size;
  const bytes = () => videoBytes('short');

  const whole: Scenario = {
    id: '1',
    title: `Memory hit, whole video (${fmt(size / 1e6)} MB, concurrency 16)`,
    videos,
    async run(bench) {
      await warm(bench, id, bytes());
      const results = await measure(bench, { connections: 16, next: () => ({ path: `/proxy/${id}` }) });
      return report(bench, whole, results, [
        ['req/s', (r) => fmt(r.requestsPerSecond)],
        ['MB/s', (r) => fmt(r.bytesPerSecond / 1e6)],
        ['latency p50 ms', (r) => fmt(r.latencyMs.p50)],
        ...CPU_ROWS,
      ]);
    },
  };

  const ranges: Scenario = {
    id: '2',
    title: 'Memory hit, 256 KiB ranges at random offsets (concurrency 64)',
    videos,
    async run(bench) {
      await warm(bench, id, bytes());
      const start = Math.floor(Math.random() * (size - RANGE_BYTES));
      for (const system of withCeiling(bench)) {
        const reply = await probe(`${system.url}/proxy/${id}`, { headers: { Range: `bytes=${start}-${start + RANGE_BYTES - 1}` }, hash: true });
        if (reply.status !== 206 || reply.sha256 !== sha256(bytes().subarray(start, start + RANGE_BYTES))) throw new Error(`${system.name}: wrong bytes for a range (${reply.status})`);
      }
      const next = () => {
        const offset = Math.floor(Math.random() * (size - RANGE_BYTES));
        return { path: `/proxy/${id}`, headers: { Range: `bytes=${offset}-${offset + RANGE_BYTES - 1}` } };
      };
      const results = await measure(bench, { connections: 64, next });
      return report(bench, ranges, results, [
        ['req/s', (r) => fmt(r.requestsPerSecond)],
        ['latency p50 ms', (r) => fmt(r.latencyMs.p50)],
        ['latency p99 ms', (r) => fmt(r.latencyMs.p99)],
        ...CPU_ROWS,
      ]);
    },
  };
  return [whole, ranges];
}

const CPU_ROWS: [string, (run: Measured) => string][] = [
  ['CPU µs per request', (r) => fmt((r.cpuSeconds * 1e6) / r.requests)],
  ['CPU s per GB served', (r) => fmt(r.cpuSeconds / (r.bytes / 1e9))],
];

const withCeiling = (bench: Bench) => [...bench.systems, bench.ceiling];

/** Every system fetches the video once and serves it again from its cache, with the right bytes both times. */
async function warm(bench: Bench, id: string, bytes: Buffer): Promise<void> {
  const expected = sha256(bytes);
  for (const system of withCeiling(bench)) {
    for (let pass = 0; pass < 2; pass++) {
      const reply = await probe(`${system.url}/proxy/${id}`, { hash: true });
      if (reply.status !== 200 || reply.sha256 !== expected) throw new Error(`${system.name}: wrong bytes for the whole video (${reply.status}, ${reply.bytes} bytes)`);
    }
  }
}

async function measure(bench: Bench, load: { connections: number; next: () => { path: string; headers?: Record<string, string> } }): Promise<Map<System, Measured[]>> {
  const { options } = bench;
  for (const system of withCeiling(bench)) await runLoad({ url: system.url, durationMs: options.warmupMs, ...load });
  return alternate(withCeiling(bench), options.runs, async (system) => {
    const cpuBefore = cpuSeconds(system.pid);
    const result = await runLoad({ url: system.url, durationMs: options.durationMs, ...load });
    const measured = { ...result, cpuSeconds: cpuSeconds(system.pid) - cpuBefore };
    bench.log(`  ${system.name}: ${fmt(result.requestsPerSecond)} req/s, ${fmt(result.bytesPerSecond / 1e6)} MB/s, p50 ${fmt(result.latencyMs.p50)} ms, p99 ${fmt(result.latencyMs.p99)} ms${result.errors ? `, ${result.errors} errors` : ''}`);
    return measured;
  });
}

function report(bench: Bench, scenario: Scenario, results: Map<System, Measured[]>, metrics: [string, (run: Measured) => string][]): ScenarioReport {
  // The median run by req/s stands for the system; its other figures come from the same run.
  const representative = new Map<System, Measured>();
  for (const [system, runs] of results) {
    const rps = median(runs.map((run) => run.requestsPerSecond));
    representative.set(system, runs.reduce((best, run) => (Math.abs(run.requestsPerSecond - rps) < Math.abs(best.requestsPerSecond - rps) ? run : best)));
  }
  const rows: Row[] = metrics.map(([metric, value]) => ({
    metric,
    values: Object.fromEntries([...representative].map(([system, run]) => [system.name, value(run)])),
  }));
  const notes: string[] = [];
  for (const [system, runs] of results) {
    const errors = runs.reduce((sum, run) => sum + run.errors, 0);
    const statuses = runs.flatMap((run) => Object.keys(run.statuses)).filter((status) => !status.startsWith('2'));
    if (errors || statuses.length) notes.push(`${system.name}: ${errors} connection errors, statuses ${[...new Set(statuses)].join(', ') || 'all 2xx'}`);
    const misses = runs.reduce((sum, run) => sum + Object.entries(run.cacheStatus).reduce((n, [status, count]) => n + (status === 'HIT' ? 0 : count), 0), 0);
    if (misses) notes.push(`${system.name}: ${misses} responses were not a cache HIT`);
  }
  const rps = (system: System) => median(results.get(system)!.map((run) => run.requestsPerSecond));
  const [tubecache, ...others] = withCeiling(bench);
  const ratio = (other: System) => rps(tubecache!) / rps(other);
  const nginx = others.find((system) => system.name === 'nginx');
  const met = ratio(bench.ceiling) >= OF_CEILING && (nginx ? ratio(nginx) >= 1 : true);
  return {
    id: scenario.id,
    title: scenario.title,
    target: TARGET,
    rows,
    verdict: { met, measured: others.map((other) => `${fmt(ratio(other))}× ${other.name}`).join(', ') },
    notes,
    raw: Object.fromEntries([...results].map(([system, runs]) => [system.name, runs])),
  };
}
