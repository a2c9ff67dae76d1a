/**
 * `npm run bench:ab -- DIR_A[@NODE] DIR_B[@NODE]`: two compiled tubecache
 * checkouts (each with dist/ built and node_modules; the same one twice with
 * two node binaries to compare Node majors) head to head on the memory-hit
 * scenarios (1 and 2), pinned to the same CPU, runs alternating A, B, B, A… so load from
 * elsewhere on the machine falls on both alike. For measuring one lever at a
 * time; the full comparison with the anchors is `npm run bench`.
 * BENCH_RUNS, BENCH_DURATION (s), BENCH_WARMUP (s) as in bench/run.ts; BENCH_ONLY=whole or
 * ranges runs one of the two; BENCH_CPU_PROFILE=1 with BENCH_KEEP=1 keeps both processes' CPU profiles.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { FAKE_YTDLP_PATH } from '../test/helpers/origin.js';
import { startBackend } from './backend.js';
import { fmt } from './context.js';
import { runLoad } from './load.js';
import { median } from './stats.js';
import { cpuSeconds } from './systems/process.js';
import { startTubecache } from './systems/tubecache.js';
import { newVideoId, VIDEO_KINDS } from './videos.js';

const [dirA, dirB] = process.argv.slice(2);
if (!dirA || !dirB) throw new Error('usage: bench/ab.ts DIR_A[@NODE] DIR_B[@NODE] (checkouts with dist/ built)');
const runs = Number(process.env.BENCH_RUNS ?? 6);
const durationMs = Number(process.env.BENCH_DURATION ?? 4) * 1000;
const warmupMs = Number(process.env.BENCH_WARMUP ?? 2) * 1000;
const lastCpu = String(cpus().length - 1);

// The systems on the last CPU, this loop (and the origin it starts) on the others.
spawnSync('taskset', ['-a', '-p', '-c', cpus().length === 2 ? '0' : `0-${cpus().length - 2}`, String(process.pid)], { stdio: 'ignore' });
const dir = mkdtempSync(join(tmpdir(), 'tubecache-ab-'));
const backend = await startBackend();
const id = newVideoId('ab');
await backend.call('addVideos', [{ id, kind: 'short' }]);
const env = { DATA_DIR: join(dir, 'data'), YTDLP_PATH: FAKE_YTDLP_PATH, YTDLP_URL_TEMPLATE: `${backend.originUrl}/watch?v={id}`, ORIGIN_ALLOWED_HOSTS: '127.0.0.1', ORIGIN_RANGE_QUERY_HOSTS: '', LOG_LEVEL: 'warn' };
const systems = await Promise.all(
  [dirA, dirB].map((spec, index) => {
    const [build, node] = spec.split('@') as [string, string | undefined];
    return startTubecache({ build, node, env: { ...env, DATA_DIR: join(dir, `data-${index}`) }, cpus: lastCpu, dir, label: `ab-${index}`, cpuProfile: process.env.BENCH_CPU_PROFILE === '1' });
  }),
);
const size = VIDEO_KINDS.short.size;
const RANGE = 256 * 1024;
const scenarios = {
  whole: { connections: 16, next: () => ({ path: `/proxy/${id}` }) },
  ranges: {
    connections: 64,
    next: () => {
      const offset = Math.floor(Math.random() * (size - RANGE));
      return { path: `/proxy/${id}`, headers: { Range: `bytes=${offset}-${offset + RANGE - 1}` } };
    },
  },
};
try {
  for (const system of systems) for (let pass = 0; pass < 2; pass++) await runLoad({ url: system.url, connections: 1, durationMs: 300, next: scenarios.whole.next });
  for (const [name, load] of Object.entries(scenarios).filter(([name]) => !process.env.BENCH_ONLY || process.env.BENCH_ONLY === name)) {
    for (const system of systems) await runLoad({ url: system.url, durationMs: warmupMs, ...load });
    const results: { rps: number; cpuUs: number }[][] = [[], []];
    for (let run = 0; run < runs; run++) {
      for (const index of run % 2 ? [1, 0] : [0, 1]) {
        const system = systems[index]!;
        const before = cpuSeconds(system.pid);
        const result = await runLoad({ url: system.url, durationMs, ...load });
        results[index]!.push({ rps: result.requestsPerSecond, cpuUs: ((cpuSeconds(system.pid) - before) * 1e6) / result.requests });
      }
    }
    const line = (index: number) => {
      const rps = results[index]!.map((r) => r.rps);
      const cpu = results[index]!.map((r) => r.cpuUs);
      return `req/s median ${fmt(median(rps))} (${rps.map((v) => fmt(v)).join(' ')}), CPU µs/request median ${fmt(median(cpu))} (${cpu.map((v) => fmt(v)).join(' ')})`;
    };
    process.stdout.write(`${name}\n  A ${systems[0]!.version} ${dirA}: ${line(0)}\n  B ${systems[1]!.version} ${dirB}: ${line(1)}\n  B/A req/s ${fmt(median(results[1]!.map((r) => r.rps)) / median(results[0]!.map((r) => r.rps)))}, CPU/request ${fmt(median(results[1]!.map((r) => r.cpuUs)) / median(results[0]!.map((r) => r.cpuUs)))}\n`);
  }
} finally {
  for (const system of systems) await system.stop();
  await backend.close();
  if (process.env.BENCH_KEEP === '1') process.stderr.write(`kept ${dir}\n`);
  else rmSync(dir, { recursive: true, force: true });
}
