import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { request } from 'node:http';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import type { VideoRequest } from '../../src/cache/keys.js';
import { openStore } from '../../src/cache/open-store.js';
import { readAll } from '../../src/cache/store.js';
import { loadConfig, SETTINGS } from '../../src/config.js';
import { createMetrics } from '../../src/metrics.js';
import type { FaultProxy, Toxics } from '../helpers/fault-proxy.js';
import { eventually } from '../helpers/harness.js';
import { storedSlice } from '../helpers/slices.js';
import type { Origin } from '../helpers/origin.js';
import { shippedNodeFlags } from '../helpers/processes.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/tubecache.js', import.meta.url));

/** The S3 deadlines as shipped (the harness relaxes them for the tests that are not about S3 faults). */
export const DEFAULT_S3_DEADLINES = {
  S3_CONNECT_TIMEOUT: SETTINGS.S3_CONNECT_TIMEOUT.default,
  S3_FIRST_BYTE_TIMEOUT: SETTINGS.S3_FIRST_BYTE_TIMEOUT.default,
  S3_IDLE_TIMEOUT: SETTINGS.S3_IDLE_TIMEOUT.default,
};

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Date.now() when the process exited. */
  at: number;
}

/** A real `tubecache serve` process, as an init system runs it. */
export interface ServeProcess {
  url: string;
  child: ChildProcess;
  exited: Promise<Exit>;
  /** Its JSON log lines, parsed. */
  logs: Record<string, unknown>[];
}

/** Starts `tubecache serve` with only `env` (plus PATH and HOME) and resolves once it listens. */
export async function startServe(env: Record<string, string>): Promise<ServeProcess> {
  // With the command's own Node flags, as `npm start` and the image run it.
  const child = spawn(process.execPath, [...shippedNodeFlags(ROOT), BIN, 'serve'], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...env,
      // The URL and the shutdown are read from the log.
      LOG_LEVEL: 'info',
      PORT: env.PORT ?? '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      logs.push(entry);
      if (entry.msg === 'tubecache listening') resolve(entry.url as string);
    });
    void exited.then((exit) => reject(new Error(`tubecache serve exited (${exit.code ?? exit.signal}) before listening: ${stderr}`)));
  });
  return { url, child, exited, logs };
}

/** Open file descriptors of this process (the service, origin, S3 server and proxies of a fault test all live in it). */
export const openFds = (): number => readdirSync('/proc/self/fd').length;

/** Open sockets of this process: client and server ends, listeners included. */
export function openSockets(): number {
  let sockets = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:')) sockets++;
    } catch {
      // Closed since the listing.
    }
  }
  return sockets;
}

/** Fds and sockets as they are now, and a check that they come back to it (after a node closed). */
export function baseline(): { fds: number; sockets: number; restored(ms?: number): Promise<void> } {
  const fds = openFds();
  const sockets = openSockets();
  return {
    fds,
    sockets,
    restored: (ms = 15_000) => eventually(() => openFds() <= fds && openSockets() <= sockets, ms, `fds back to ${fds} and sockets to ${sockets} (now ${openFds()} and ${openSockets()})`),
  };
}

export interface Streamed {
  status: number;
  /** Body bytes received, and their sha256. */
  bytes: number;
  sha256: string;
  /** Every byte of Content-Length arrived. */
  complete: boolean;
  /** Milliseconds to the response headers, and to the end. */
  headersMs: number;
  ms: number;
}

/**
 * GET on a fresh connection, hashing the body as it arrives (nothing kept).
 * `bytesPerSecond` reads slowly (TCP backpressure does the rest); `abortAfterBytes`
 * destroys the request once that many body bytes arrived (0: before the headers).
 */
/** `onData`: told the body bytes received so far, at every chunk. */
export function streamGet(url: string, options: { bytesPerSecond?: number; abortAfterBytes?: number; onData?: (bytes: number) => void } = {}): Promise<Streamed> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let bytes = 0;
    let headersMs = 0;
    const req = request(url, { agent: false }, (res) => {
      headersMs = performance.now() - started;
      const expected = Number(res.headers['content-length'] ?? -1);
      let complete = false;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        hash.update(chunk);
        options.onData?.(bytes);
        if (options.abortAfterBytes !== undefined && bytes >= options.abortAfterBytes) return void req.destroy();
        if (options.bytesPerSecond) {
          res.pause();
          setTimeout(() => res.resume(), (chunk.length / options.bytesPerSecond) * 1000);
        }
      });
      res.on('end', () => (complete = bytes === expected));
      res.on('error', () => undefined);
      res.on('close', () => resolve({ status: res.statusCode ?? 0, bytes, sha256: hash.digest('hex'), complete, headersMs, ms: performance.now() - started }));
    });
    req.on('error', (error) => {
      // An abort before the headers is what was asked for; anything else is the test's problem
      // (after the headers, the response's 'close' has resolved already).
      if (options.abortAfterBytes === 0) resolve({ status: 0, bytes: 0, sha256: '', complete: false, headersMs: 0, ms: performance.now() - started });
      else reject(error);
    });
    req.end();
    if (options.abortAfterBytes === 0) setImmediate(() => req.destroy());
  });
}

/** Routes `id`'s media requests through `proxy` (in front of the origin): its resolution names the proxy's port. */
export function throughProxy(origin: Origin, proxy: FaultProxy, id: string): void {
  origin.setResolve(id, { kind: 'url', url: origin.issueUrl(id).replace(`:${origin.port}/`, `:${proxy.port}/`) });
}

/**
 * Reads back everything the store of `env` holds for `id` (S3 straight from
 * its server, not through a test's fault proxy; or the disk store) and checks
 * it against `source`: each slice object is the source's bytes at its place
 * with their digests (of the manifest's version, when there is a manifest), and the manifest lists only slices that are there. Returns the
 * indexes of the slices found.
 */
export async function checkPersisted(t: ExecutionContext, env: Record<string, string>, video: VideoRequest, source: Buffer): Promise<number[]> {
  const config = loadConfig(env);
  const tier = await openStore(config, createMetrics());
  try {
    const manifest = await tier.getManifest(video, config.SLICE_BYTES);
    const found: number[] = [];
    for await (const page of tier.list(tier.keys.video(video))) {
      for (const object of page) {
        const index = tier.keys.parse(object.key)?.index;
        if (index === undefined) continue;
        const stored = (await readAll(tier.store, object.key)) ?? Buffer.alloc(0);
        const start = index * config.SLICE_BYTES;
        const expected = source.subarray(start, start + config.SLICE_BYTES);
                // The version named in the object's header (slice-codec.ts), which must be the manifest's when there is one.
        const etag = manifest?.etag ?? stored.toString('utf8', 17, 17 + stored.readUInt8(16));
        t.true(stored.equals(await storedSlice(expected, etag)), `slice ${index} in the store is the source's bytes of this version`);
        found.push(index);
      }
    }
    if (manifest) {
      t.is(manifest.size, source.length, 'the manifest has the source size');
      for (const index of manifest.persisted) t.true(found.includes(index), `slice ${index} listed in the manifest is in the store`);
    }
    return found.sort((a, b) => a - b);
  } finally {
    await tier.store.close();
  }
}

/** Established connections accepted on 127.0.0.1:`port` (the service's side of its clients' connections). */
/**
 * Lets `bytes` more response bytes through `proxy`, slowly, then applies `toxics` (a reset or a freeze
 * mid-body). Slowed because a TCP reset discards what the receiver has not read yet: at full speed the
 * whole cut could still sit in the client's socket buffer and be lost, and a resume would start where
 * the request did instead of where the bytes stopped.
 */
export async function faultAfter(proxy: FaultProxy, bytes: number, toxics: Partial<Toxics>): Promise<void> {
  const from = proxy.stats().bytesDown;
  proxy.set({ bandwidth: 100_000 });
  await eventually(() => proxy.stats().bytesDown - from > bytes, 30_000, `${bytes} bytes to pass`);
  proxy.set(toxics);
}

export function serverConnections(port: number): number {
  // /proc/net/tcp writes 127.0.0.1:port as 0100007F:<port in hex>; state 01 is ESTABLISHED.
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/self/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .filter((line) => {
      const [, localAddress, , state] = line.trim().split(/\s+/);
      return localAddress === local && state === '01';
    }).length;
}
