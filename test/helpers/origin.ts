/**
 * A local stand-in for YouTube as tubecache sees it, on 127.0.0.1 with no internet:
 *
 *  - `/videoplayback?…` behaves like googlevideo media servers: signed URLs that expire,
 *    byte ranges by `Range` header or (rangeStyle 'query') by `&range=a-b`, and scripted
 *    faults (403 mid-stream, resets, 5xx, stalls, short bodies, throttling);
 *  - `/_ytdlp?…` scripts test/helpers/fake-yt-dlp (the stand-in yt-dlp) and records its argv;
 *  - `/watch?v=<id>` is a plain HTML page with a `<video src>` that Debian's real yt-dlp
 *    (generic extractor → "html5" embed) can resolve.
 *
 * Everything a test might assert on is counted per video (requests, ranges, statuses,
 * body bytes, request headers, yt-dlp runs).
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

/** Absolute path of the stand-in yt-dlp (set YTDLP_PATH to it). */
export const FAKE_YTDLP_PATH = fileURLToPath(new URL('./fake-yt-dlp', import.meta.url));
/** Absolute path of the committed 144p fixture (test/fixtures/video.mp4). */
export const FIXTURE_VIDEO_PATH = fileURLToPath(new URL('../fixtures/video.mp4', import.meta.url));
/** The User-Agent the stand-in yt-dlp tells tubecache to send (its resolution `http_headers`). */
export const TEST_USER_AGENT = 'tubecache-test-agent';

export interface OriginOptions {
  /**
   * Answer 403 to media requests without the right `X-Origin-Token` header (default true),
   * like YouTube rejecting requests that lack the resolution's headers. URLs minted for the
   * `/watch` HTML page are always exempt: the real yt-dlp cannot know the token (its generic
   * extractor only returns a browser User-Agent, Accept*, Sec-Fetch-Mode and Referer).
   */
  requireToken?: boolean;
}

export interface VideoOptions {
  contentType: string;
  /** googlevideo's last-modified stamp (microseconds); goes into the URL as `lmt`. */
  lmt: string;
  title: string;
  /** Include `filesize` in the stand-in's resolution JSON. */
  reportSize: boolean;
  /** Seconds; included as `duration` in the resolution JSON when set. */
  reportDuration: number | undefined;
  /** Lifetime of newly minted media URLs (`expire=` param). Negative → already expired. */
  expiresInSeconds: number;
  /** 'header': Range header only. 'query': also `&range=a-b` → 200 with exactly those bytes. */
  rangeStyle: 'header' | 'query';
  /** Pace response bodies (read live per chunk, so it can change mid-stream). */
  bytesPerSecond: number | undefined;
  /** Wait this long before sending response headers. */
  firstByteDelayMs: number;
  /**
   * Other streams of the video, by the exact `-f` selector that picks them (a
   * stand-in for YouTube's itags): the stand-in yt-dlp answers that selector
   * with a URL to these bytes; any other selector gets the video's own bytes.
   */
  formats: Record<string, FormatStream>;
}

/** One stream of a video, as `VideoOptions.formats` lists it. */
export interface FormatStream {
  bytes: Buffer;
  contentType: string;
  /** yt-dlp's `format_id` and `ext`: `140` and `m4a` for YouTube's AAC audio. */
  formatId: string;
  ext: string;
}

/**
 * Scripted misbehaviour of one video's media requests. `times` counts responses the fault
 * affects (default 1) — pass Infinity for "always". Offsets are absolute byte offsets.
 */
export type Fault =
  /** The next request starting at or after `afterBytes` (default 0) gets 403, then normal. */
  | { kind: 'forbid-once'; afterBytes?: number }
  | { kind: 'forbid-always' }
  /** A response covering offset `afterBytes` sends bytes before it, then the socket is destroyed. */
  | { kind: 'reset'; afterBytes: number; times?: number }
  /** Answer `status` (e.g. 500, 503) with a short text body. */
  | { kind: 'status'; status: number; times?: number }
  /** A response covering offset `afterBytes` sends bytes before it, then stalls without closing. */
  | { kind: 'hang-body'; afterBytes: number; times?: number }
  /** Body one byte short, Content-Length matching the short body (Content-Range still claims the full ask). */
  | { kind: 'wrong-length'; times?: number };

/** How the stand-in yt-dlp (and the /watch page) behaves for one video. */
export type ResolveBehaviour =
  | { kind: 'fail'; stderr: string; exitCode?: number }
  /** The stand-in spawns `sleep 600` and sleeps; see `origin.hangingProcesses` for the pids. */
  | { kind: 'hang'; childStdio?: 'ignore' | 'inherit' }
  | { kind: 'slow'; ms: number }
  /** Resolve to an arbitrary URL (a host off the allow-list, a `file:` URL…). */
  | { kind: 'url'; url: string };

export interface MediaRequestRecord {
  method: string;
  /** The `Range` header as received. */
  range: string | undefined;
  /** The `range` query parameter as received. */
  queryRange: string | undefined;
  status: number;
  /** Media body bytes written (so far, while in flight). */
  bytes: number;
  headers: IncomingHttpHeaders;
}

export interface OriginStats {
  mediaRequests: number;
  mediaBytes: number;
  /** yt-dlp runs: stand-in calls to /_ytdlp plus /watch page loads (one per real yt-dlp run). */
  resolves: number;
  /** TCP connections that carried media requests (origin-wide: a connection serves any video). */
  mediaConnections?: number;
}

export interface VideoStats extends OriginStats {
  requests: MediaRequestRecord[];
}

/** One stand-in yt-dlp run, argv exactly as the process received it. */
export interface ResolveCall {
  id: string | undefined;
  url: string;
  format: string;
  argv: string[];
}

export interface HangingProcess {
  id: string | undefined;
  pid: number;
  childPid: number;
}

export interface Origin {
  /** `http://127.0.0.1:PORT`; tests set YTDLP_URL_TEMPLATE to `${url}/watch?v={id}`. */
  readonly url: string;
  readonly port: number;
  /** The per-origin secret sent back as `X-Origin-Token` in the resolution's http_headers. */
  readonly token: string;
  addVideo(id: string, bytes: Buffer, options?: Partial<VideoOptions>): void;
  setVideo(id: string, options: Partial<VideoOptions>): void;
  /** Later media requests answer 404 and resolutions say "Video unavailable". */
  removeVideo(id: string): void;
  /** Swap the bytes and bump `lmt`; URLs issued before keep working but serve the new bytes. */
  replaceBytes(id: string, bytes: Buffer): void;
  setFault(id: string, fault: Fault | undefined): void;
  setThrottle(id: string, bytesPerSecond: number | undefined): void;
  setResolve(id: string, behaviour: ResolveBehaviour | undefined): void;
  /** Mint a fresh signed media URL, as a resolution would (not counted as a resolve). */
  issueUrl(id: string): string;
  /** Make every URL issued so far for `id` answer 403 (as if they all expired). */
  revokeUrls(id: string): void;
  pageUrl(id: string): string;
  /** Snapshots. */
  readonly stats: OriginStats;
  statsFor(id: string): VideoStats;
  resetStats(): void;
  readonly resolveCalls: ResolveCall[];
  readonly hangingProcesses: HangingProcess[];
  close(): Promise<void>;
}

interface Video {
  bytes: Buffer;
  options: VideoOptions;
  fault: Fault | undefined;
  faultUses: number;
  resolve: ResolveBehaviour | undefined;
  stats: VideoStats;
}

interface IssuedUrl {
  id: string;
  expire: number;
  /** Minted for the HTML page (the real yt-dlp): exempt from the token check. */
  viaPage: boolean;
  revoked: boolean;
  /** The `VideoOptions.formats` selector the URL serves; undefined: the video's own bytes. */
  format: string | undefined;
}

/** The bytes and type a URL of `format` serves. */
const streamOf = (v: Video, format: string | undefined): { bytes: Buffer; contentType: string } =>
  (format !== undefined ? v.options.formats[format] : undefined) ?? { bytes: v.bytes, contentType: v.options.contentType };

const DEFAULT_LMT = '1700000000000000';
const CHUNK = 64 * 1024;

const emptyStats = (): VideoStats => ({ mediaRequests: 0, mediaBytes: 0, resolves: 0, requests: [] });
const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export async function startOrigin(originOptions: OriginOptions = {}): Promise<Origin> {
  const requireToken = originOptions.requireToken ?? true;
  const token = randomBytes(12).toString('hex');
  const videos = new Map<string, Video>();
  const issued = new Map<string, IssuedUrl>();
  const totals: OriginStats = { mediaRequests: 0, mediaBytes: 0, resolves: 0, mediaConnections: 0 };
  const resolveCalls: ResolveCall[] = [];
  const hangingProcesses: HangingProcess[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let base = '';

  // Timers are tracked so close() can cancel throttled/delayed responses.
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => (timers.delete(timer), resolve()), ms);
      timers.add(timer);
    });

  const video = (id: string): Video => {
    const v = videos.get(id);
    if (!v) throw new Error(`origin: no video "${id}" (addVideo first)`);
    return v;
  };

  const issueUrl = (id: string, viaPage = false, format?: string): string => {
    const v = video(id);
    const sig = randomBytes(16).toString('hex');
    // ceil: a URL is valid for at least expiresInSeconds, never a rounding moment less.
    const expire = Math.ceil(Date.now() / 1000 + v.options.expiresInSeconds);
    issued.set(sig, { id, expire, viaPage, revoked: false, format });
    const stream = streamOf(v, format);
    const q = new URLSearchParams({ id, expire: String(expire), clen: String(stream.bytes.length), lmt: v.options.lmt, mime: stream.contentType, sig });
    return `${base}/videoplayback?${q.toString().replace(/\+/g, '%20')}`;
  };

  /** Consume one use of the current fault if `applies`; clears it when used up. */
  const takeFault = (v: Video, applies: boolean): Fault | undefined => {
    const fault = v.fault;
    if (!fault || !applies) return undefined;
    const times = fault.kind === 'forbid-always' ? Infinity : fault.kind === 'forbid-once' ? 1 : (fault.times ?? 1);
    if (++v.faultUses >= times) (v.fault = undefined), (v.faultUses = 0);
    return fault;
  };

  const sendText = (res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
    res.end(res.req.method === 'HEAD' ? undefined : text);
  };

  // ---- googlevideo stand-in ------------------------------------------------------------
  async function media(req: IncomingMessage, res: ServerResponse, q: URLSearchParams): Promise<void> {
    totals.mediaRequests++;
    const id = q.get('id') ?? '';
    const v = videos.get(id);
    const record: MediaRequestRecord = {
      method: req.method ?? 'GET',
      range: req.headers.range,
      queryRange: q.get('range') ?? undefined,
      status: 0,
      bytes: 0,
      headers: req.headers,
    };
    if (v) v.stats.mediaRequests++, v.stats.requests.push(record);
    const answer = (status: number, text: string, headers?: Record<string, string>) => {
      record.status = status;
      sendText(res, status, text, headers);
    };

    const grant = issued.get(q.get('sig') ?? '');
    if (!grant || grant.id !== id || String(grant.expire) !== q.get('expire')) return answer(403, 'signature mismatch');
    if (grant.revoked || Date.now() / 1000 >= grant.expire) return answer(403, 'url expired');
    if (requireToken && !grant.viaPage && req.headers['x-origin-token'] !== token) return answer(403, 'missing or wrong X-Origin-Token');
    if (!v) return answer(404, 'video removed');

    const stream = streamOf(v, grant.format);
    const bytes = stream.bytes; // captured: replaceBytes mid-response must not tear this body
    const size = bytes.length;
    const head = { 'Content-Type': stream.contentType, 'Accept-Ranges': 'bytes', 'Cache-Control': 'private, max-age=21298', 'Last-Modified': lastModified(v.options.lmt) };

    // Which bytes: googlevideo's &range= (200, no Content-Range) wins over the header.
    let start = 0;
    let end = size - 1;
    let status = 200;
    const queryRange = v.options.rangeStyle === 'query' ? record.queryRange : undefined;
    if (queryRange !== undefined) {
      const m = /^(\d+)-(\d*)$/.exec(queryRange);
      if (!m || (m[2] && Number(m[2]) < Number(m[1]))) return answer(400, 'bad range parameter');
      start = Number(m[1]);
      end = Math.min(m[2] ? Number(m[2]) : size - 1, size - 1);
      if (start >= size) return answer(416, 'range not satisfiable', { 'Content-Range': `bytes */${size}` });
    } else if (record.range !== undefined) {
      const r = parseRangeHeader(record.range, size);
      if (r === 'unsatisfiable') return answer(416, 'range not satisfiable', { 'Content-Range': `bytes */${size}` });
      if (r) [start, end, status] = [r[0], r[1], 206];
    }

    // Does the current fault hit this response? Body faults never hit HEAD (no body).
    const isHead = req.method === 'HEAD';
    const applies = (fault: Fault): boolean => {
      switch (fault.kind) {
        case 'forbid-always':
        case 'status':
          return true;
        case 'forbid-once':
          return start >= (fault.afterBytes ?? 0);
        case 'wrong-length':
          return !isHead;
        case 'reset':
        case 'hang-body':
          return !isHead && start <= fault.afterBytes && fault.afterBytes <= end;
      }
    };
    const f = takeFault(v, v.fault !== undefined && applies(v.fault));
    if (f?.kind === 'forbid-once' || f?.kind === 'forbid-always') return answer(403, 'forbidden (fault)');
    if (f?.kind === 'status') return answer(f.status, `fault: status ${f.status}`);

    if (v.options.firstByteDelayMs > 0) await sleep(v.options.firstByteDelayMs);
    if (res.destroyed) return;

    let length = end - start + 1;
    if (f?.kind === 'wrong-length') length = Math.max(0, length - 1);
    const headers: Record<string, string | number> = { ...head, 'Content-Length': length };
    if (status === 206) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    record.status = status;
    res.writeHead(status, headers);
    if (isHead) return void res.end();

    // Body: chunked writes with backpressure; throttled bodies pace small chunks with timers.
    const stopAt = f?.kind === 'reset' || f?.kind === 'hang-body' ? f.afterBytes - start : length;
    const body = bytes.subarray(start, start + length);
    let sent = 0;
    let lastWrite: Promise<void> = Promise.resolve();
    let gone = false; // the client went away (or close() destroyed the socket)
    res.once('close', () => (gone = true));
    const writable = () => new Promise<void>((resolve) => {
      const done = () => (res.off('drain', done), res.off('close', done), resolve());
      res.on('drain', done).on('close', done);
    });
    while (sent < stopAt && !gone && !res.destroyed) {
      const bps = v.options.bytesPerSecond;
      const n = Math.min(stopAt - sent, bps ? Math.max(1, Math.min(CHUNK, Math.floor(bps / 20))) : CHUNK);
      const chunk = body.subarray(sent, sent + n);
      sent += n;
      // Counted when handed to the socket: that is what the client can receive.
      record.bytes += n;
      v.stats.mediaBytes += n;
      totals.mediaBytes += n;
      let written = () => {};
      lastWrite = new Promise((resolve) => (written = resolve));
      res.write(chunk, () => written());
      // No pause after the last chunk: the client has every byte, and a keep-alive request queued behind res.end() would wait for nothing.
      if (bps && sent < stopAt) await sleep((n / bps) * 1000);
      if (res.writableNeedDrain && !gone) await writable(); // checked after the pause: drain may have fired during it
    }
    if (gone || res.destroyed) return;
    if (f?.kind === 'reset') {
      res.flushHeaders();
      await lastWrite; // let the bytes before the cut reach the kernel, then close abruptly
      res.destroy();
    } else if (f?.kind === 'hang-body') {
      res.flushHeaders(); // …and never end; close() destroys the socket
    } else {
      res.end();
    }
  }

  // ---- stand-in yt-dlp --------------------------------------------------------------------
  async function ytdlp(res: ServerResponse, q: URLSearchParams): Promise<void> {
    totals.resolves++;
    const pageUrl = q.get('url') ?? '';
    const id = pageId(pageUrl);
    let argv: string[] = [];
    try {
      argv = JSON.parse(q.get('argv') ?? '[]') as string[];
    } catch {
      /* recorded as [] */
    }
    resolveCalls.push({ id, url: pageUrl, format: q.get('format') ?? '', argv });
    const reply = (r: { exitCode: number; stdout: string; stderr: string; hangMs?: number; delayMs?: number; childStdio?: string }) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(r));
    };
    if (id === undefined) return reply({ exitCode: 1, stdout: 'null\n', stderr: `ERROR: Unsupported URL: ${pageUrl}\n` });
    const v = videos.get(id);
    if (!v) return reply({ exitCode: 1, stdout: 'null\n', stderr: `ERROR: [youtube] ${id}: Video unavailable\n` });
    v.stats.resolves++;
    const b = v.resolve;
    if (b?.kind === 'fail') return reply({ exitCode: b.exitCode ?? 1, stdout: 'null\n', stderr: b.stderr.endsWith('\n') ? b.stderr : `${b.stderr}\n` });
    if (b?.kind === 'hang') return reply({ exitCode: 1, stdout: '', stderr: '', hangMs: 3_600_000, childStdio: b.childStdio ?? 'ignore' });
    const selector = q.get('format') ?? '';
    const stream = v.options.formats[selector];
    // The shape yt-dlp -J prints for a single progressive format (itag 18), or for the stream the selector names.
    const info: Record<string, unknown> = {
      id,
      title: v.options.title,
      ext: stream?.ext ?? 'mp4',
      format_id: stream?.formatId ?? '18',
      format: stream ? `${stream.formatId} - audio only` : '18 - 256x144 (144p)',
      url: b?.kind === 'url' ? b.url : issueUrl(id, false, stream ? selector : undefined),
      http_headers: {
        'User-Agent': TEST_USER_AGENT,
        Accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
        'Accept-Language': 'en-us,en;q=0.5',
        'Sec-Fetch-Mode': 'navigate',
        'X-Origin-Token': token,
      },
      protocol: 'https',
      width: stream ? null : 256,
      height: stream ? null : 144,
      vcodec: stream ? 'none' : 'avc1.4d400c',
      acodec: 'mp4a.40.2',
      webpage_url: pageUrl,
      extractor: 'youtube',
      extractor_key: 'Youtube',
      _type: 'video',
    };
    if (v.options.reportSize) info.filesize = (stream ?? v).bytes.length;
    if (v.options.reportDuration !== undefined) info.duration = v.options.reportDuration;
    reply({ exitCode: 0, stdout: `${JSON.stringify(info)}\n`, stderr: '', ...(b?.kind === 'slow' ? { delayMs: b.ms } : {}) });
  }

  // ---- HTML page for the real yt-dlp ----------------------------------------------------
  async function page(res: ServerResponse, q: URLSearchParams): Promise<void> {
    totals.resolves++;
    const id = q.get('v') ?? '';
    const v = videos.get(id);
    if (v) v.stats.resolves++;
    const b = v?.resolve;
    if (b?.kind === 'hang') return; // never answers; close() destroys the socket
    if (b?.kind === 'slow') await sleep(b.ms);
    if (!v || b?.kind === 'fail') return sendText(res, 404, 'Video unavailable');
    const src = b?.kind === 'url' ? b.url : issueUrl(id, true);
    const html = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${escapeHtml(v.options.title)}</title></head>
<body><video src="${escapeHtml(src)}" type="${escapeHtml(v.options.contentType)}" width="256" height="144" controls></video></body></html>
`;
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(html) });
    res.end(html);
  }

  const mediaSockets = new WeakSet<object>();
  const server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    const q = u.searchParams;
    if (u.pathname === '/videoplayback' && !mediaSockets.has(req.socket)) {
      mediaSockets.add(req.socket);
      totals.mediaConnections!++;
    }
    const done = (p: Promise<void>) => p.catch((err: unknown) => (res.headersSent ? res.destroy() : sendText(res, 500, String(err))));
    if (u.pathname === '/videoplayback' && (req.method === 'GET' || req.method === 'HEAD')) return void done(media(req, res, q));
    if (u.pathname === '/_ytdlp') return void done(ytdlp(res, q));
    if (u.pathname === '/_ytdlp/hanging') {
      hangingProcesses.push({ id: pageId(q.get('url') ?? ''), pid: Number(q.get('pid')), childPid: Number(q.get('childPid')) });
      return sendText(res, 200, 'ok');
    }
    if (u.pathname === '/watch' && req.method === 'GET') return void done(page(res, q));
    sendText(res, 404, 'not found');
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;

  function pageId(pageUrl: string): string | undefined {
    try {
      const u = new URL(pageUrl);
      return u.pathname === '/watch' ? (u.searchParams.get('v') ?? undefined) : undefined;
    } catch {
      return undefined;
    }
  }

  return {
    url: base,
    port,
    token,
    addVideo(id, bytes, options = {}) {
      if (videos.has(id)) throw new Error(`origin: video "${id}" already added`);
      const defaults: VideoOptions = {
        contentType: 'video/mp4',
        lmt: DEFAULT_LMT,
        title: `Test video ${id}`,
        reportSize: true,
        reportDuration: undefined,
        expiresInSeconds: 6 * 3600,
        rangeStyle: 'header',
        bytesPerSecond: undefined,
        firstByteDelayMs: 0,
        formats: {},
      };
      videos.set(id, { bytes, options: { ...defaults, ...options }, fault: undefined, faultUses: 0, resolve: undefined, stats: emptyStats() });
    },
    setVideo: (id, options) => void Object.assign(video(id).options, options),
    removeVideo: (id) => void videos.delete(id),
    replaceBytes(id, bytes) {
      const v = video(id);
      v.bytes = bytes;
      v.options.lmt = /^\d+$/.test(v.options.lmt) ? String(BigInt(v.options.lmt) + 1_000_000n) : `${v.options.lmt}.1`;
    },
    setFault(id, fault) {
      const v = video(id);
      (v.fault = fault), (v.faultUses = 0);
    },
    setThrottle: (id, bytesPerSecond) => void (video(id).options.bytesPerSecond = bytesPerSecond),
    setResolve: (id, behaviour) => void (video(id).resolve = behaviour),
    issueUrl: (id) => issueUrl(id),
    revokeUrls(id) {
      for (const grant of issued.values()) if (grant.id === id) grant.revoked = true;
    },
    pageUrl: (id) => `${base}/watch?v=${encodeURIComponent(id)}`,
    get stats() {
      return { ...totals };
    },
    statsFor(id) {
      const s = video(id).stats;
      return { ...s, requests: s.requests.map((r) => ({ ...r })) };
    },
    resetStats() {
      Object.assign(totals, { mediaRequests: 0, mediaBytes: 0, resolves: 0, mediaConnections: 0 });
      for (const v of videos.values()) v.stats = emptyStats();
      resolveCalls.length = 0;
      hangingProcesses.length = 0;
    },
    resolveCalls,
    hangingProcesses,
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections(); // includes stalled (hang-body) and never-answered sockets
      await closed;
    },
  };
}

/**
 * One `bytes=` range → [start, end], 'unsatisfiable' (→ 416), or undefined to ignore the
 * header and send 200 (malformed, other units, multiple ranges: all allowed by RFC 9110).
 */
function parseRangeHeader(header: string, size: number): [number, number] | 'unsatisfiable' | undefined {
  const m = /^bytes=\s*(\d*)-(\d*)\s*$/.exec(header);
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    return suffix === 0 || size === 0 ? 'unsatisfiable' : [Math.max(0, size - suffix), size - 1];
  }
  const start = Number(m[1]);
  if (m[2] !== '' && Number(m[2]) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return [start, m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)];
}

function lastModified(lmt: string): string {
  const ms = /^\d+$/.test(lmt) ? Number(lmt) / 1000 : NaN;
  return new Date(Number.isFinite(ms) ? ms : 0).toUTCString();
}
