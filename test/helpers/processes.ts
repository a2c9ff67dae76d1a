import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

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

/** The Node flags on the command's first line (`#!/usr/bin/env -S node …`) of the checkout at `root`: what `npm start` and the image run, for tests and the bench that start node themselves. */
export function shippedNodeFlags(root: string): string[] {
  const shebang = readFileSync(join(root, 'bin/tubecache.js'), 'utf8').split('\n', 1)[0]!;
  // Builds from before the flags had `#!/usr/bin/env node`: none.
  const flags = /^#!\/usr\/bin\/env (?:-S )?node((?: --\S+)*)$/.exec(shebang);
  if (!flags) throw new Error(`bin/tubecache.js: unexpected first line ${JSON.stringify(shebang)}`);
  return flags[1]!.split(' ').filter(Boolean);
}
