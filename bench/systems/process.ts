/** Starting, pinning, watching and stopping the processes under test. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, createWriteStream, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { probe } from '../probe.js';

/** `node`: the bare node:http ceiling of the memory-hit scenarios (bare-node.ts), in no other scenario. */
export type SystemName = 'tubecache' | 'nginx' | 'varnish' | 'node';

export interface System {
  name: SystemName;
  /** http://127.0.0.1:PORT */
  url: string;
  version: string;
  /** The process whose memory and CPU are the system's own (tubecache's node; nginx's and varnishd's whole trees are summed by `cpuSeconds`). */
  pid: number;
  stop(): Promise<void>;
}

/** The first executable of `candidates` (absolute paths, or names looked up in PATH). */
export function findBinary(candidates: readonly string[]): string | undefined {
  for (const candidate of candidates) {
    if (candidate.includes('/')) {
      try {
        accessSync(candidate, constants.X_OK);
        return candidate;
      } catch {
        continue;
      }
    }
    const found = spawnSync('sh', ['-c', `command -v ${candidate}`], { encoding: 'utf8' }).stdout.trim();
    if (found) return found;
  }
  return undefined;
}

/** A port nobody listens on right now (the OS picks it; the system binds it a moment later). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Spawns `command` pinned to `cpus` (taskset) when given, its output appended
 * to `logFile`. taskset execs the command, so the child's pid is the system's.
 */
export function spawnPinned(command: string, args: string[], options: { cpus: string | undefined; env?: NodeJS.ProcessEnv; logFile: string; cwd?: string }): ChildProcess {
  const [file, argv] = options.cpus ? ['taskset', ['-c', options.cpus, command, ...args]] : [command, args];
  const log = createWriteStream(options.logFile, { flags: 'a' });
  const child = spawn(file, argv, { env: options.env ?? process.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  return child;
}

/** Waits until `url` answers anything; throws with the log's tail if the process exits or time runs out. */
export async function waitUntilServing(url: string, child: ChildProcess, logFile: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    const answered = await probe(url).then(
      () => true,
      () => false,
    );
    if (answered) return;
    await sleep(100);
  }
  let tail = '';
  try {
    tail = readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    // no log yet
  }
  throw new Error(`${url} did not come up (exit code ${child.exitCode}); log ${logFile}:\n${tail}`);
}

/** Sends `signal` and waits for the exit, escalating to SIGKILL after `graceMs`. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Resident set size now and at its peak (VmHWM), in bytes, from /proc. */
export function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

/** User + system CPU seconds of `pid` and every descendant still alive. */
export function cpuSeconds(pid: number): number {
  const ticks = 100; // USER_HZ on Linux
  let total = 0;
  const visit = (current: number) => {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${current}/stat`, 'utf8');
    } catch {
      return;
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    total += (Number(fields[11]) + Number(fields[12])) / ticks;
    let children = '';
    try {
      children = readFileSync(`/proc/${current}/task/${current}/children`, 'utf8');
    } catch {
      // kernel without CONFIG_PROC_CHILDREN: the process alone
    }
    for (const child of children.split(' ').filter(Boolean)) visit(Number(child));
  };
  visit(pid);
  return total;
}
