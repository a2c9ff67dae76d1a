import { execFileSync } from 'node:child_process';

/** Whether a process exists (a zombie still does: only a reaped process is gone). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Direct children of this process, as `pid stat command`, less ps itself and tsx's esbuild service. */
export function childProcesses(): string[] {
  return execFileSync('ps', ['-o', 'pid=,stat=,comm=', '--ppid', String(process.pid)])
    .toString()
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !/\s(ps|esbuild)$/.test(line));
}
