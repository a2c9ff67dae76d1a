/**
 * The nginx edge of deploy/nginx/tubecache.conf, run for real: Debian's nginx
 * with that file (only the cache path, the listen port and the two node
 * addresses substituted) in front of tubecache nodes, with an access log that
 * records what each client asked (Range) and got (status, Content-Range).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, fetchRaw, freePort, type Node, type Reply } from './harness.js';

export const NGINX_PATH = '/usr/sbin/nginx';
const CONF = new URL('../../deploy/nginx/tubecache.conf', import.meta.url);

/** Why edge tests cannot run here, or undefined when they can. */
export const nginxMissing = (): string | undefined =>
  existsSync(NGINX_PATH) ? undefined : `${NGINX_PATH} is not installed (.ci/run installs Debian's nginx)`;

/** One line of the edge's access log. Empty strings where nginx logs "-" or nothing. */
export interface EdgeLogEntry {
  method: string;
  uri: string;
  status: number;
  /** The client's Range header. */
  range: string;
  /** The Content-Range the edge sent the client. */
  contentRange: string;
  /** nginx's cache status of the (first) slice: MISS, HIT… */
  cacheStatus: string;
  bytesSent: number;
}

export interface Edge {
  url: string;
  get(path: string, headers?: Record<string, string>): Promise<Reply>;
  /** The access log so far (nginx writes each line when its request ends). */
  accessLog(): Promise<EdgeLogEntry[]>;
  close(): Promise<void>;
}

/** Replaces a value the conf promises to contain exactly once, so nothing else in it changes. */
function substitute(conf: string, token: string, value: string): string {
  const parts = conf.split(token);
  if (parts.length !== 2) throw new Error(`deploy/nginx/tubecache.conf must contain "${token}" exactly once, found ${parts.length - 1}`);
  return parts.join(value);
}

const LOG_FORMAT =
  "log_format tubecache_test escape=json '{\"method\":\"$request_method\",\"uri\":\"$request_uri\",\"status\":$status," +
  '"range":"$http_range","contentRange":"$sent_http_content_range","cacheStatus":"$upstream_cache_status","bytesSent":$bytes_sent}\';';

/**
 * Starts nginx in front of `nodes`: the conf's two upstream servers are the
 * first two nodes (one node fills both, so a single-node test still runs the
 * conf unchanged). Anything with a node's `url` will do, e.g. a pass-through
 * in front of a node.
 */
export async function startEdge(nodes: readonly Pick<Node, 'url'>[]): Promise<Edge> {
  const [a, b = a] = nodes;
  if (!a) throw new Error('startEdge needs at least one node');
  const prefix = await mkdtemp(join(tmpdir(), 'tubecache-edge-'));
  // Run as root, nginx's workers switch to `nobody`, which must reach the cache and temp directories.
  await chmod(prefix, 0o755);
  const port = await freePort();
  let conf = await readFile(CONF, 'utf8');
  conf = substitute(conf, '/var/cache/nginx/tubecache', join(prefix, 'cache'));
  conf = substitute(conf, 'listen 8080;', `listen 127.0.0.1:${port};`);
  conf = substitute(conf, '127.0.0.1:8081', new URL(a.url).host);
  conf = substitute(conf, '127.0.0.1:8082', new URL(b!.url).host);
  await writeFile(join(prefix, 'tubecache.conf'), conf);
  const accessLogPath = join(prefix, 'access.log');
  // Everything nginx would otherwise put under Debian's /var paths goes into the prefix.
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `${kind}_temp_path ${join(prefix, `${kind}_temp`)};`);
  await writeFile(
    join(prefix, 'nginx.conf'),
    [
      'worker_processes 1;',
      `pid ${join(prefix, 'nginx.pid')};`,
      `error_log ${join(prefix, 'error.log')} warn;`,
      'events { worker_connections 256; }',
      `http { ${LOG_FORMAT} access_log ${accessLogPath} tubecache_test; ${temp.join(' ')} include ${join(prefix, 'tubecache.conf')}; }`,
      '',
    ].join('\n'),
  );

  const nginx = spawn(NGINX_PATH, ['-p', prefix, '-e', join(prefix, 'error.log'), '-c', join(prefix, 'nginx.conf'), '-g', 'daemon off;'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  let spawnError: Error | undefined;
  nginx.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // Without a listener, a binary that cannot be run would crash the test process instead of failing startEdge.
  nginx.once('error', (error) => (spawnError = error));
  const exited = new Promise<void>((resolve) => nginx.once('exit', () => resolve()));
  // A test process that dies must not leave nginx running.
  const stop = () => nginx.kill('SIGTERM');
  process.once('exit', stop);

  const url = `http://127.0.0.1:${port}`;
  const errorLog = () => readFile(join(prefix, 'error.log'), 'utf8').catch(() => '');
  try {
    await eventually(async () => {
      if (spawnError) throw spawnError;
      if (nginx.exitCode !== null) throw new Error(`nginx exited with ${nginx.exitCode}: ${stderr}${await errorLog()}`);
      return (await fetchRaw(`${url}/healthz`).catch(() => undefined))?.status === 200;
    }, 10_000, 'nginx to accept connections');
  } catch (error) {
    stop();
    await rm(prefix, { recursive: true, force: true });
    throw error;
  }
  return {
    url,
    get: (path, headers) => fetchRaw(url + path, { headers }),
    async accessLog() {
      const text = await readFile(accessLogPath, 'utf8').catch(() => '');
      return text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as EdgeLogEntry);
    },
    async close() {
      process.off('exit', stop);
      if (nginx.exitCode === null) {
        stop();
        await exited;
      }
      await rm(prefix, { recursive: true, force: true });
    },
  };
}
