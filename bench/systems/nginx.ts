/**
 * The anchor: nginx's proxy_cache with the slice module (the seed's strategy 2,
 * deploy/nginx/tubecache.conf) in front of the same origin. nginx cannot run
 * yt-dlp, so each /proxy/<id> maps to one long-lived signed URL minted for it.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findBinary, freePort, spawnPinned, stopChild, waitUntilServing, type System } from './process.js';

export const NGINX_INSTALL_HINT = 'nginx not found: `apt-get install nginx` (Debian/Ubuntu; needs the slice module, built into Debian\'s nginx) adds the nginx column; BENCH_NGINX=/path/to/nginx picks another binary.';

export interface EdgeOptions {
  /** http://127.0.0.1:PORT of the origin. */
  originUrl: string;
  /** Sent as X-Origin-Token, as the resolution's http_headers tell tubecache to. */
  token: string;
  /** Video id → signed media path and query at the origin. */
  paths: Record<string, string>;
  cpus: string | undefined;
  dir: string;
}

/** BENCH_NGINX, when set, is the only candidate (BENCH_NGINX=none leaves the column out). */
export const nginxBinary = () => findBinary(process.env.BENCH_NGINX ? [process.env.BENCH_NGINX] : ['/usr/sbin/nginx', 'nginx']);

export async function startNginx(binary: string, options: EdgeOptions): Promise<System> {
  const prefix = join(options.dir, 'nginx');
  for (const sub of ['cache', 'temp']) mkdirSync(join(prefix, sub), { recursive: true });
  const port = await freePort();
  const origin = new URL(options.originUrl);
  const map = Object.entries(options.paths)
    .map(([id, path]) => `        /proxy/${id} "${path}";`)
    .join('\n');
  // One worker per CPU it is pinned to: tubecache is one event loop, so the comparison is per core.
  const workers = options.cpus ? String(countCpus(options.cpus)) : 'auto';
  const conf = `
user root;
worker_processes ${workers};
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path ${prefix}/temp/client;
    proxy_temp_path ${prefix}/temp/proxy;
    fastcgi_temp_path ${prefix}/temp/fastcgi;
    uwsgi_temp_path ${prefix}/temp/uwsgi;
    scgi_temp_path ${prefix}/temp/scgi;

    # As deploy/nginx/tubecache.conf: 1 MiB slices on disk, written in place.
    proxy_cache_path ${prefix}/cache levels=1:2 keys_zone=bench:50m max_size=10g inactive=1d use_temp_path=off;

    map $uri $media {
${map}
        default "";
    }

    upstream origin {
        server ${origin.hostname}:${origin.port};
        keepalive 32;
    }

    server {
        listen 127.0.0.1:${port};

        location = /healthz {
            return 200 "ok\\n";
        }

        location /proxy/ {
            if ($media = "") {
                return 404;
            }
            slice 1m;
            proxy_cache bench;
            proxy_cache_key $uri$slice_range;
            proxy_set_header Range $slice_range;
            proxy_set_header X-Origin-Token "${options.token}";
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # The origin says "private" (googlevideo does too); an edge for one service caches anyway.
            proxy_ignore_headers Cache-Control Expires Set-Cookie;
            proxy_cache_valid 200 206 1h;
            proxy_cache_lock on;
            proxy_cache_lock_timeout 30s;
            proxy_cache_lock_age 30s;
            proxy_read_timeout 60s;
            add_header X-Cache-Status $upstream_cache_status always;
            proxy_pass http://origin$media;
        }
    }
}
`;
  const confFile = join(prefix, 'nginx.conf');
  writeFileSync(confFile, conf);
  const logFile = join(prefix, 'stderr.log');
  const child = spawnPinned(binary, ['-p', prefix, '-e', join(prefix, 'error.log'), '-c', confFile, '-g', 'daemon off;'], { cpus: options.cpus, logFile });
  const url = `http://127.0.0.1:${port}`;
  await waitUntilServing(`${url}/healthz`, child, join(prefix, 'error.log'));
  const version = spawnSync(binary, ['-v'], { encoding: 'utf8' }).stderr.trim().replace(/^nginx version: /, '');
  return { name: 'nginx', url, version, pid: child.pid!, stop: () => stopChild(child, 'SIGTERM') };
}

/** "1", "0,2", "2-3" → how many CPUs. */
export function countCpus(list: string): number {
  return list.split(',').reduce((count, part) => {
    const [from, to] = part.split('-').map(Number);
    return count + (to === undefined ? 1 : to - from! + 1);
  }, 0);
}
