import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const BIN = fileURLToPath(new URL('../../bin/tubecache.js', import.meta.url));

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `tubecache …` as a real process, as an operator or cron would: stdout
 * and stderr are pipes (so no progress bar), and the environment is only what
 * the test gives plus PATH and HOME.
 */
export async function runCli(args: string[], env: Record<string, string>): Promise<CliResult> {
  return run(process.execPath, [BIN, ...args], env);
}

const quote = (word: string) => `'${word.replaceAll("'", "'\\''")}'`;

/**
 * Runs `tubecache …` with a terminal for stdout and stderr (util-linux
 * `script` allocates a pseudo-terminal), where both arrive in `stdout`.
 * Undefined when `script` is not installed.
 */
export async function runCliInTerminal(args: string[], env: Record<string, string>): Promise<CliResult | undefined> {
  const command = [process.execPath, BIN, ...args].map(quote).join(' ');
  const result = await run('script', ['-qec', command, '/dev/null'], env);
  return result.exitCode === ENOENT_EXIT ? undefined : result;
}

const ENOENT_EXIT = -2;

async function run(file: string, args: string[], env: Record<string, string>): Promise<CliResult> {
  const result = await execa(file, args, {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      ...env,
    },
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    timeout: 60_000,
  });
  if (result.code === 'ENOENT') return { exitCode: ENOENT_EXIT, stdout: '', stderr: '' };
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** Parses stdout that must be exactly one JSON value on one line. */
export function jsonLine<T>(stdout: string): T {
  const lines = stdout.trim().split('\n');
  if (lines.length !== 1) throw new Error(`expected one line of JSON, got ${lines.length}: ${stdout.slice(0, 500)}`);
  return JSON.parse(lines[0]!) as T;
}
