/**
 * tubecache as a separate process, so its RSS and CPU are its own: the
 * compiled dist/ run by bin/tubecache.js, as `npm start` and the image run it.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { shippedNodeFlags } from '../../test/helpers/processes.js';
import { freePort, spawnPinned, stopChild, waitUntilServing, type System } from './process.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Compiles src/ into dist/ (`npm run build`, so the run measures the current sources); returns the checkout. */
export function buildTubecache(): string {
  const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`npm run build failed:\n${build.stdout}${build.stderr}`);
  return ROOT;
}

export interface TubecacheOptions {
  /** What buildTubecache returned. */
  build: string;
  /** Settings (src/config.ts names); PORT and HOST are chosen here. */
  env: Record<string, string>;
  cpus: string | undefined;
  /** Where the log (and CPU profiles) go. */
  dir: string;
  label: string;
  /** Write V8 CPU profiles into `dir`/`label`-profiles when the process exits. */
  cpuProfile: boolean;
  /** The node binary (default: the one running the bench), to compare Node majors. */
  node?: string;
  /** Processes sharing the port (BENCH_PROCESSES; tubecache-cluster.mjs); 1: the command alone. */
  processes?: number;
  /** Sets PEER_URL (this process's address) and PEER_TOKEN: nodes on one bucket stream slices from each other. */
  peers?: boolean;
}

export async function startTubecache(options: TubecacheOptions): Promise<System> {
  const port = await freePort();
  const logFile = join(options.dir, `${options.label}.log`);
  const flags = shippedNodeFlags(options.build);
  const nodeArgs = [...flags, ...(options.cpuProfile ? ['--cpu-prof', `--cpu-prof-dir=${join(options.dir, `${options.label}-profiles`)}`] : [])];
  const node = options.node ?? process.execPath;
  const bin = join(options.build, 'bin/tubecache.js');
  const processes = options.processes ?? 1;
  const command = processes > 1 ? [fileURLToPath(new URL('./tubecache-cluster.mjs', import.meta.url)), bin, String(processes)] : [bin, 'serve'];
  const child = spawnPinned(node, [...nodeArgs, ...command], {
    cpus: options.cpus,
    cwd: ROOT,
    // Only what the bench sets: no S3_*, PORT or LOG_LEVEL leaking in from the caller's shell.
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...options.env, PORT: String(port), HOST: '127.0.0.1', ...(options.peers && { PEER_URL: `http://127.0.0.1:${port}`, PEER_TOKEN: 'bench-peer-token-0123456789' }) },
    logFile,
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUntilServing(`${url}/healthz`, child, logFile);
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  return {
    name: 'tubecache',
    url,
    version: `tubecache ${version} (compiled${processes > 1 ? `, ${processes} processes on one port` : ''}; Node ${node === process.execPath ? process.version : spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim()}${flags.map((flag) => ` ${flag}`).join('')})`,
    pid: child.pid!,
    stop: () => stopChild(child, 'SIGTERM'),
  };
}
