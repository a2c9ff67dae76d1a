/**
 * The second anchor: Varnish caching whole objects in memory and streaming
 * them while they arrive (one backend fetch per object, waiters coalesced),
 * in front of the same origin through the same fixed signed URLs as nginx.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EdgeOptions } from './nginx.js';
import { findBinary, freePort, spawnPinned, stopChild, waitUntilServing, type System } from './process.js';

export const VARNISH_INSTALL_HINT = 'varnishd not found: `apt-get install varnish` (Debian/Ubuntu) adds the Varnish column; BENCH_VARNISHD=/path/to/varnishd picks another binary.';

/** BENCH_VARNISHD, when set, is the only candidate (BENCH_VARNISHD=none leaves the column out). */
export const varnishBinary = () => findBinary(process.env.BENCH_VARNISHD ? [process.env.BENCH_VARNISHD] : ['/usr/sbin/varnishd', 'varnishd']);

export async function startVarnish(binary: string, options: EdgeOptions): Promise<System> {
  const dir = join(options.dir, 'varnish');
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const origin = new URL(options.originUrl);
  const routes = Object.entries(options.paths)
    .map(([id, path], index) => `    ${index === 0 ? 'if' : 'elsif'} (req.url == "/proxy/${id}") {\n        set req.url = "${path}";\n    }`)
    .join('\n');
  const vcl = `vcl 4.1;

backend origin {
    .host = "${origin.hostname}";
    .port = "${origin.port}";
    .first_byte_timeout = 60s;
    .between_bytes_timeout = 60s;
}

sub vcl_recv {
    if (req.url == "/healthz") {
        return (synth(200, "ok"));
    }
${routes}
    if (req.url !~ "^/videoplayback\\?") {
        return (synth(404, "unknown video"));
    }
    unset req.http.Cookie;
    return (hash);
}

sub vcl_backend_fetch {
    set bereq.http.X-Origin-Token = "${options.token}";
    # Whole objects: client ranges are cut from the cached (or streaming) object.
    unset bereq.http.Range;
}

sub vcl_backend_response {
    # The origin says "private"; an edge for one service caches anyway.
    set beresp.ttl = 1h;
    set beresp.grace = 0s;
    set beresp.do_stream = true;
    return (deliver);
}

sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache-Status = "HIT";
    } else {
        set resp.http.X-Cache-Status = "MISS";
    }
}
`;
  const vclFile = join(dir, 'bench.vcl');
  writeFileSync(vclFile, vcl);
  const logFile = join(dir, 'varnishd.log');
  // -j none: no privilege separation, so the work directory under /tmp needs no chown.
  const args = ['-F', '-j', 'none', '-n', join(dir, 'work'), '-a', `127.0.0.1:${port}`, '-f', vclFile, '-s', 'malloc,2G', '-T', 'none'];
  const child = spawnPinned(binary, args, { cpus: options.cpus, logFile });
  const url = `http://127.0.0.1:${port}`;
  await waitUntilServing(`${url}/healthz`, child, logFile);
  const version = /varnish-[\d.]+/.exec(spawnSync(binary, ['-V'], { encoding: 'utf8' }).stderr)?.[0] ?? 'varnish (unknown version)';
  return { name: 'varnish', url, version, pid: child.pid!, stop: () => stopChild(child, 'SIGTERM') };
}
