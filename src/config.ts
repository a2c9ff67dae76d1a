import { hostname } from 'node:os';
import { ConfigError } from './errors.js';
import { parseFormats, type Formats } from './origin/format.js';
import { parseDuration, parseSize } from './units.js';

/**
 * The one configuration schema. Every setting is an environment variable, read
 * and validated once at start-up; defaults live here and nowhere else. The
 * README's configuration table documents the same names.
 */

interface Setting<T> {
  readonly default: string;
  readonly doc: string;
  /** `env`: the whole environment, for a value that names other variables. */
  parse(raw: string, name: string, env?: Record<string, string | undefined>): T;
}

const fail = (name: string, message: string): never => {
  throw new ConfigError(name, message);
};

const str = (defaultValue: string, doc: string): Setting<string> => ({ default: defaultValue, doc, parse: (raw) => raw });

const int = (defaultValue: string, doc: string, min = 0, max = Number.MAX_SAFE_INTEGER): Setting<number> => ({
  default: defaultValue,
  doc,
  parse(raw, name) {
    const value = Number(raw);
    if (!/^\d+$/.test(raw.trim()) || value < min || value > max) fail(name, `expected a whole number from ${min} to ${max}, got "${raw}"`);
    return value;
  },
});

const size = (defaultValue: string, doc: string, min = 0): Setting<number> => ({
  default: defaultValue,
  doc,
  parse(raw, name) {
    const bytes = parseSize(raw);
    if (bytes === undefined) return fail(name, `expected a size such as 1048576, 100MiB or 1MB, got "${raw}"`);
    if (bytes < min) fail(name, `must be at least ${min} bytes, got "${raw}"`);
    return bytes;
  },
});

const duration = (defaultValue: string, doc: string, minMs = 0): Setting<number> => ({
  default: defaultValue,
  doc,
  parse(raw, name) {
    const ms = parseDuration(raw);
    if (ms === undefined) return fail(name, `expected a duration such as 90s, 5m or 2h, got "${raw}"`);
    return ms < minMs ? fail(name, `must be at least ${minMs}ms, got "${raw}"`) : ms;
  },
});

const optionalDuration = (doc: string): Setting<number | undefined> => ({
  default: '',
  doc,
  parse: (raw, name) => (raw === '' ? undefined : duration('', doc).parse(raw, name)),
});

const bool = (defaultValue: string, doc: string): Setting<boolean> => ({
  default: defaultValue,
  doc,
  parse(raw, name) {
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    return fail(name, `expected true or false, got "${raw}"`);
  },
});

const oneOf = <T extends string>(values: readonly T[], defaultValue: T, doc: string): Setting<T> => ({
  default: defaultValue,
  doc,
  parse: (raw, name) => (values.includes(raw as T) ? (raw as T) : fail(name, `expected one of ${values.join(', ')}, got "${raw}"`)),
});

/** Comma-separated host patterns: `example.com`, `*.googlevideo.com`, `127.0.0.1`. */
const hostList = (defaultValue: string, doc: string): Setting<string[]> => ({
  default: defaultValue,
  doc,
  parse(raw, name) {
    const hosts = raw.split(',').map((host) => host.trim().toLowerCase()).filter(Boolean);
    for (const host of hosts) if (!/^(\*\.)?[a-z0-9.[\]:-]+$/.test(host)) fail(name, `"${host}" is not a host name or *.domain pattern`);
    return hosts;
  },
});

/** An http(s) base URL, or empty; kept without its trailing slash so paths join with `${url}/…`. */
const baseUrl = (doc: string): Setting<string> => ({
  default: '',
  doc,
  parse(raw, name) {
    if (raw === '') return raw;
    const url = URL.canParse(raw) ? new URL(raw) : undefined;
    if (!url || !/^https?:$/.test(url.protocol) || url.search || url.hash || url.username) return fail(name, `expected an http(s) URL such as https://cache.example.com, got "${raw}"`);
    return url.href.replace(/\/+$/, '');
  },
});

/**
 * This node's address for the other nodes, one value for every node: a base URL in which `{hostname}`
 * stands for the machine's host name and `{NAME}` for the environment variable NAME (FLY_MACHINE_ID…).
 */
const peerUrl = (doc: string): Setting<string> => ({
  default: '',
  doc,
  parse(raw, name, env) {
    const expanded = raw.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, variable: string) => {
      if (variable === 'hostname') return hostname();
      return env?.[variable] || fail(name, `names {${variable}}, but ${variable} is not set`);
    });
    return baseUrl(doc).parse(expanded, name, env);
  },
});

/** Named yt-dlp format selectors: `name=selector,…`, the first the default (src/origin/format.ts). */
const formatMap = (defaultValue: string, doc: string): Setting<Formats> => ({
  default: defaultValue,
  doc,
  parse(raw, name) {
    try {
      return parseFormats(raw);
    } catch (error) {
      return fail(name, (error as Error).message);
    }
  },
});

/** Extra yt-dlp arguments: a JSON array of strings, or words separated by spaces. */
const argList = (doc: string): Setting<string[]> => ({
  default: '',
  doc,
  parse(raw, name) {
    if (!raw.trim().startsWith('[')) return raw.split(/\s+/).filter(Boolean);
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      return fail(name, 'starts with "[" but is not valid JSON');
    }
    if (!Array.isArray(parsed) || !parsed.every((arg) => typeof arg === 'string')) fail(name, 'must be a JSON array of strings');
    return parsed as string[];
  },
});

export const SETTINGS = {
  PORT: int('8080', 'HTTP port', 0, 65535),
  HOST: str('127.0.0.1', 'address to listen on (0.0.0.0 in containers)'),
  LOG_LEVEL: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info', 'pino log level'),

  S3_ENDPOINT: str('', 'S3 endpoint URL; empty keeps objects in the disk store under DATA_DIR'),
  S3_REGION: str('us-east-1', 'S3 region'),
  S3_BUCKET: str('tubecache', 'bucket name'),
  S3_PREFIX: str('', 'key prefix inside the bucket (or DATA_DIR), e.g. "tubecache/"'),
  S3_ACCESS_KEY_ID: str('', 'access key (empty: the AWS SDK default chain)'),
  S3_SECRET_ACCESS_KEY: str('', 'secret key'),
  S3_FORCE_PATH_STYLE: bool('true', 'path-style URLs (MinIO, Ceph RGW); false for virtual-hosted AWS'),
  S3_CHECKSUMS: oneOf(['WHEN_REQUIRED', 'WHEN_SUPPORTED'], 'WHEN_REQUIRED', "the AWS SDK's request checksum calculation and response validation"),
  S3_CREATE_BUCKET: bool('true', 'create the bucket at start-up when it does not exist'),
  // A deadline of 0 would fail every request, not disable the deadline.
  S3_CONNECT_TIMEOUT: duration('1s', 'S3 connect timeout', 1),
  S3_FIRST_BYTE_TIMEOUT: duration('2s', "S3 time from sending a request to its response headers (a PUT's body included)", 1),
  S3_IDLE_TIMEOUT: duration('2s', 'S3 idle timeout between body chunks; a slice read that stalls continues from the origin', 1),
  DATA_DIR: str('./data', 'the disk store (when S3_ENDPOINT is empty): objects under DATA_DIR/objects, written atomically'),
  DISK_CACHE_DIR: str('', "with S3_ENDPOINT: a local disk tier between memory and S3 in this directory (this node's alone); empty: none. Without S3 it is a start-up error (the DATA_DIR store already is the disk)"),
  DISK_CACHE_BYTES: size('10GiB', 'byte budget of the disk tier, kept by evicting the least recently read files', 1),
  DISK_CACHE_QUEUE: int('64', 'slices and manifests waiting to be written to the disk tier; more are dropped and counted', 0),

  MEMORY_CACHE_BYTES: size('100MiB', 'byte budget of every slice byte in the process: cached, being filled, held by readers, streamed through, waiting for upload (at least 2 × SLICE_BYTES)'),
  MEMORY_CACHE_TTL: duration('5m', 'time to live of an entry in memory'),
  SLICE_BYTES: size('1MiB', 'size of a cache slice', 64 * 1024),
  HEAD_SECONDS: int('30', 'seconds from the start of each video persisted to S3'),
  HEAD_BYTES: size('8MiB', 'bytes persisted when the duration cannot be known'),
  PERSIST: oneOf(['head', 'full'], 'head', 'head: the first HEAD_SECONDS; full: every slice'),
  UPLOAD_CONCURRENCY: int('4', 'S3 uploads running at once', 1, 256),
  UPLOAD_QUEUE: int('256', 'slices waiting for upload; more are dropped and counted', 0),
  LEASE_TTL: duration('10s', 'a slice lease (nodes sharing a bucket) lapses this long after its last renewal; judged on the S3 clock, whose times are whole seconds', 2_000),
  LEASE_WAIT: duration('20s', 'a node waiting for another node\'s slice fetches it from the origin itself after this long', 1),
  SHARED_TTL: duration('10m', 'prune deletes slices beyond the head that a node uploaded for other nodes (and lapsed leases) once they are this old'),
  PEER_URL: peerUrl('this node\'s address as the other nodes on the bucket reach it, e.g. http://{FLY_MACHINE_ID}.vm.myapp.internal:8080 ({hostname}: the machine\'s host name; {NAME}: the environment variable NAME); with PEER_TOKEN, a node waiting for a slice another node is fetching streams it from that node as it arrives instead of waiting for its upload'),
  PEER_TOKEN: str('', 'the bearer token nodes send each other for /peer/ (the same on every node, not ADMIN_TOKEN; at least 16 characters)'),
  ACCESS_TOUCH_INTERVAL: duration('1m', 'how often one process records a video\'s last access in S3'),
  STORE_ABSENT_TTL: duration('10s', 'how long a process remembers that the store had no manifest for a video, so a retry goes straight to the origin (0: ask the store every time)'),

  YTDLP_PATH: str('yt-dlp', 'the yt-dlp executable'),
  FORMATS: formatMap('video=18/b,audio=140/bestaudio[ext=m4a]/bestaudio', 'named yt-dlp format selectors, name=selector pairs separated by commas; the first is the default (a request without ?format=)'),
  YTDLP_URL_TEMPLATE: str('https://www.youtube.com/watch?v={id}', 'page URL given to yt-dlp; {id} is replaced'),
  YTDLP_EXTRA_ARGS: argList('extra yt-dlp arguments (cookies, proxy): JSON array or space-separated'),
  YTDLP_CONCURRENCY: int('4', 'yt-dlp processes at once', 1, 64),
  YTDLP_QUEUE: int('64', 'resolutions waiting for a yt-dlp slot; more answer 503', 0),
  PREFETCH_BACKLOG: int('64', 'server-side prefetches waiting for a slot (YTDLP_CONCURRENCY run at once); more answer 429', 0),
  RESOLVE_TIMEOUT: duration('20s', 'yt-dlp runs longer than this are killed (504)'),
  RESOLVE_MARGIN: duration('10m', 'a resolved URL is dropped this long before its expire='),
  RESOLVE_TTL: duration('1h', 'how long a resolved URL without expire= is kept'),
  NEGATIVE_TTL: duration('60s', 'how long an unavailable video is remembered'),

  ORIGIN_ALLOWED_HOSTS: hostList('*.googlevideo.com,*.youtube.com', 'media hosts tubecache may fetch from'),
  ORIGIN_RANGE_QUERY_HOSTS: hostList('*.googlevideo.com', 'hosts that take the range as a range= query parameter'),
  ORIGIN_MAX_RANGE: size('10MiB', 'largest byte range asked of the origin in one request', 1),
  ORIGIN_RETRIES: int('2', 'retries of a failed origin request (5xx, reset, timeout)', 0, 10),
  ORIGIN_CONNECT_TIMEOUT: duration('5s', 'origin connect timeout'),
  ORIGIN_FIRST_BYTE_TIMEOUT: duration('10s', 'origin time to response headers'),
  ORIGIN_IDLE_TIMEOUT: duration('15s', 'origin idle timeout (no bytes)'),
  ORIGIN_MAX_SOCKETS: int('16', 'origin connections per host', 1, 1024),

  SHUTDOWN_GRACE: duration('25s', 'on SIGTERM/SIGINT, how long in-flight responses and uploads may run before they are cut'),

  ADMIN_TOKEN: str('', 'enables the admin API; clients send Authorization: Bearer <token>'),
  ADMIN_PORT: int('0', 'serve the admin API on its own port (0: on PORT)', 0, 65535),
  ADMIN_PUBLIC_URL: baseUrl("the public listener as the admin page's browser reaches it, for preview and prefetch when ADMIN_PORT is set"),
  PRUNE_INTERVAL: optionalDuration('run prune inside the service this often (one node only)'),
  PRUNE_TTL: duration('7d', 'prune deletes videos not accessed for this long'),
  PRUNE_MAX_BYTES: size('0', 'prune then deletes least recently accessed videos above this size (0: no limit)'),
} as const;

export type SettingName = keyof typeof SETTINGS;

export type Config = { readonly [K in SettingName]: ReturnType<(typeof SETTINGS)[K]['parse']> };

/** Settings that no longer exist: start-up stops and names what replaced them, rather than silently ignoring them. */
const RETIRED: Record<string, string> = {
  S3_TIMEOUT: 'replaced by S3_CONNECT_TIMEOUT, S3_FIRST_BYTE_TIMEOUT and S3_IDLE_TIMEOUT; unset it',
  // Retired rather than kept beside FORMATS: two places for one selector would disagree sooner or later.
  YTDLP_FORMAT: 'is retired: name formats in FORMATS instead, e.g. FORMATS="video=18/b,audio=140/bestaudio[ext=m4a]/bestaudio" (the first is the default)',
};

/** Reads every setting from `env`; the first invalid one throws a ConfigError naming it. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  for (const [name, replacement] of Object.entries(RETIRED)) if (env[name] !== undefined) throw new ConfigError(name, replacement);
  const config: Record<string, unknown> = {};
  for (const [name, setting] of Object.entries(SETTINGS) as [SettingName, Setting<unknown>][]) {
    const raw = env[name];
    // Unset means the default; set-but-empty is a value (an empty host list, or an error for a number).
    config[name] = setting.parse(raw ?? setting.default, name, env);
  }
  const result = config as Config;
  if (result.SLICE_BYTES > 64 * 2 ** 20) throw new ConfigError('SLICE_BYTES', 'must be at most 64MiB (a slice is held in memory whole)');
  // Less would leave no room to keep even a new video's first slice, and nothing for the chunks streamed past the cache.
  if (result.MEMORY_CACHE_BYTES < 2 * result.SLICE_BYTES) throw new ConfigError('MEMORY_CACHE_BYTES', `must hold at least two slices (2 × SLICE_BYTES = ${2 * result.SLICE_BYTES} bytes)`);
  // Refused rather than ignored: an operator who set it expects a second tier that would not exist.
  if (result.DISK_CACHE_DIR && !result.S3_ENDPOINT) throw new ConfigError('DISK_CACHE_DIR', 'needs S3_ENDPOINT: without S3 the disk store under DATA_DIR already is the store; unset DISK_CACHE_DIR');
  // Both or neither: an address without a token could not be asked, a token without an address never would be.
  if ((result.PEER_URL === '') !== (result.PEER_TOKEN === '')) throw new ConfigError(result.PEER_URL ? 'PEER_TOKEN' : 'PEER_URL', 'PEER_URL and PEER_TOKEN are set together (streaming slices between nodes) or not at all');
  if (result.PEER_TOKEN && result.PEER_TOKEN.length < 16) throw new ConfigError('PEER_TOKEN', 'must be at least 16 characters');
  // Every node holds the peer token; the admin token opens deletes and prunes, so it is not to be one of them.
  if (result.PEER_TOKEN && result.PEER_TOKEN === result.ADMIN_TOKEN) throw new ConfigError('PEER_TOKEN', 'must differ from ADMIN_TOKEN');
  if (!result.YTDLP_URL_TEMPLATE.includes('{id}')) throw new ConfigError('YTDLP_URL_TEMPLATE', 'must contain {id}');
  return result;
}
