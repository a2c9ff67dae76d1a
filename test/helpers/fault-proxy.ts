/**
 * An in-process TCP fault proxy for tests, in toxiproxy's vocabulary.
 *
 *   const proxy = await startFaultProxy({ target: 'http://127.0.0.1:7480' });
 *   // point the client at proxy.endpoint (http://127.0.0.1:<proxy.port>)
 *
 * Toxics, all switchable at runtime with `proxy.set({...})` and off with `proxy.clear()`;
 * each applies to open connections as well as new ones, per connection and direction:
 *   latencyMs          every chunk is delayed this long, in each direction.
 *   bandwidth          bytes per second, in each direction (undefined: unlimited).
 *   frozen             connections are accepted and bytes are held, not passed: the
 *                      target looks like a stopped process (SIGSTOP). Reading stops, so
 *                      senders feel backpressure. set({ frozen: false }) lets the held
 *                      bytes through in order.
 *   resetAfterBytes    after this many more bytes in `limitDirection`, both sockets get
 *                      a TCP RST (the client sees ECONNRESET mid-body).
 *   closeAfterBytes    after this many more bytes in `limitDirection`, both sockets are
 *                      closed cleanly (the client sees a short body and a FIN).
 *   limitDirection     'down' (target → client, default: response bodies) or 'up'
 *                      (client → target: request bodies) for the two limits above.
 *                      Bytes count from when the limit was set, or from the connection's start.
 * Listening:
 *   refuse()           stop listening and drop open connections: connecting fails with
 *                      ECONNREFUSED (toxiproxy's enabled=false).
 *   accept()           listen again on the same port.
 *   dropConnections()  close every open connection, keep listening.
 * HTTP-level faults (needs `http: true`, the default; the proxy then tracks HTTP/1.1
 * request framing on the client side, Content-Length and chunked bodies):
 *   failRequests({ status, body?, headers?, count?, match? })
 *                      the next `count` (default 1) requests that `match` are answered
 *                      by the proxy with that status and body, and never reach the target;
 *                      the connection is then closed (`Connection: close`). Specs queue up.
 *   s3Error(code, message)  an S3 XML error body, e.g. for 503 SlowDown (see `slowDown`).
 * Counters: `proxy.stats()` → connections accepted, open, bytes each way, requests seen
 * (HTTP mode), HTTP faults answered, resets and closes done by limits.
 *
 * Latency and bandwidth are delays in this process's event loop, so they are lower
 * bounds; limits pass "up to" N bytes (a reset can discard what the kernel has not sent).
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export type Direction = 'up' | 'down';

export interface Toxics {
  latencyMs: number;
  bandwidth: number | undefined;
  frozen: boolean;
  resetAfterBytes: number | undefined;
  closeAfterBytes: number | undefined;
  limitDirection: Direction;
}

export interface RequestHead {
  method: string;
  path: string;
  /** Header names in lower case. */
  headers: Record<string, string>;
}

export interface HttpFault {
  status: number;
  body?: string;
  headers?: Record<string, string>;
  /** How many requests to answer this way (default 1). */
  count?: number;
  /** Which requests (default: every request). */
  match?: (head: RequestHead) => boolean;
}

export interface FaultProxyStats {
  connections: number;
  open: number;
  bytesUp: number;
  bytesDown: number;
  requests: number;
  httpFaults: number;
  resets: number;
  closes: number;
}

export interface FaultProxy {
  port: number;
  /** http://127.0.0.1:<port> */
  endpoint: string;
  set(toxics: Partial<Toxics>): void;
  /** All toxics off and queued HTTP faults dropped (listening state unchanged). */
  clear(): void;
  readonly toxics: Readonly<Toxics>;
  failRequests(fault: HttpFault): void;
  refuse(): Promise<void>;
  accept(): Promise<void>;
  dropConnections(): void;
  stats(): FaultProxyStats;
  close(): Promise<void>;
}

export interface FaultProxyOptions {
  /** Where to forward: a URL (http://host:port) or { host, port }. */
  target: string | { host: string; port: number };
  /** Port to listen on, 127.0.0.1 (default 0: any free port). */
  port?: number;
  /** Track HTTP/1.1 requests on the client side (needed for failRequests). Default true. */
  http?: boolean;
}

const NO_TOXICS: Toxics = {
  latencyMs: 0,
  bandwidth: undefined,
  frozen: false,
  resetAfterBytes: undefined,
  closeAfterBytes: undefined,
  limitDirection: 'down',
};

/** An S3 error document, as S3 answers it. */
export function s3Error(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>fault-proxy</RequestId></Error>`;
}

/** S3's throttling answer, for failRequests({ ...slowDown, count }). */
export const slowDown: HttpFault = {
  status: 503,
  body: s3Error('SlowDown', 'Please reduce your request rate.'),
  headers: { 'content-type': 'application/xml' },
};

/** Held bytes per direction before the source socket is paused. */
const HIGH_WATER = 256 * 1024;
/** Bandwidth is metered in pieces of about this share of a second, so it stays smooth. */
const BANDWIDTH_SLICE_S = 0.02;
/** A faulted connection whose client never closes is dropped after this long. */
const FAULTED_LINGER_MS = 5000;
/** A request head longer than this means the client is not speaking HTTP/1.1: stop parsing. */
const MAX_HEAD = 64 * 1024;

// ---------------------------------------------------------------------------
// HTTP/1.1 request framing (client → target), just enough to find request heads.

type Segment = { head: Buffer; info: RequestHead } | { data: Buffer };

class RequestFramer {
  private state: 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'trailer' | 'raw' = 'head';
  private pending: Buffer[] = [];
  private remaining = 0;
  private line = '';

  /** Splits client bytes into complete request heads (held until complete) and everything else. */
  push(chunk: Buffer): Segment[] {
    const out: Segment[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      switch (this.state) {
        case 'raw':
          out.push({ data: chunk.subarray(offset) });
          return out;
        case 'head': {
          this.pending.push(chunk.subarray(offset));
          const joined = Buffer.concat(this.pending);
          const end = joined.indexOf('\r\n\r\n');
          if (end < 0) {
            this.pending = [joined];
            if (joined.length > MAX_HEAD) {
              this.state = 'raw';
              this.pending = [];
              out.push({ data: joined });
            }
            return out;
          }
          const head = joined.subarray(0, end + 4);
          const info = parseHead(head.toString('latin1'));
          out.push({ head, info });
          this.pending = [];
          const te = info.headers['transfer-encoding'] ?? '';
          const length = Number(info.headers['content-length'] ?? 0);
          if (/chunked/i.test(te)) this.state = 'chunk-size';
          else if (length > 0) {
            this.state = 'length';
            this.remaining = length;
          }
          // The rest of `joined` is this request's body (or the next request).
          chunk = joined.subarray(end + 4);
          offset = 0;
          break;
        }
        case 'length':
        case 'chunk-data': {
          const take = Math.min(this.remaining, chunk.length - offset);
          out.push({ data: chunk.subarray(offset, offset + take) });
          offset += take;
          this.remaining -= take;
          if (this.remaining === 0) {
            // chunk-data is followed by CRLF, which the size-line reader skips as an empty line.
            this.state = this.state === 'length' ? 'head' : 'chunk-size';
          }
          break;
        }
        case 'chunk-size':
        case 'trailer': {
          const newline = chunk.indexOf(0x0a, offset);
          const stop = newline < 0 ? chunk.length : newline + 1;
          out.push({ data: chunk.subarray(offset, stop) });
          this.line += chunk.subarray(offset, stop).toString('latin1');
          offset = stop;
          if (newline < 0) break;
          const line = this.line.trim();
          this.line = '';
          if (this.state === 'trailer') {
            if (line === '') this.state = 'head';
          } else if (line !== '') {
            const size = parseInt(line.split(';')[0]!, 16);
            if (Number.isNaN(size)) this.state = 'raw';
            else if (size === 0) this.state = 'trailer';
            else {
              this.state = 'chunk-data';
              this.remaining = size;
            }
          }
          break;
        }
      }
    }
    return out;
  }
}

function parseHead(text: string): RequestHead {
  const [requestLine = '', ...lines] = text.split('\r\n');
  const [method = '', path = ''] = requestLine.split(' ');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { method, path, headers };
}

const REASONS: Record<number, string> = { 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 500: 'Internal Server Error', 503: 'Service Unavailable' };

function httpAnswer(fault: HttpFault): Buffer {
  const body = Buffer.from(fault.body ?? '');
  const headers = { 'content-length': String(body.length), connection: 'close', ...fault.headers };
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
  return Buffer.concat([Buffer.from(`HTTP/1.1 ${fault.status} ${REASONS[fault.status] ?? 'Fault'}\r\n${lines.join('')}\r\n`), body]);
}

// ---------------------------------------------------------------------------

interface Proxy {
  toxics: Toxics;
  counters: FaultProxyStats;
  takeFault(head: RequestHead): HttpFault | undefined;
}

/** One direction of one connection: a queue of chunks released as the toxics allow. */
class Link {
  private queue: { chunk: Buffer; arrived: number }[] = [];
  private queued = 0;
  private timer: NodeJS.Timeout | undefined;
  private waitingDrain = false;
  /** Called once the queue is empty (a FIN passed on after the bytes before it). */
  private onEmpty: (() => void) | undefined;
  /** Bytes passed, and the count when the current limit was set. */
  passed = 0;
  limitBase = 0;
  /** Time the bandwidth meter allows the next byte. */
  private nextFree = 0;

  constructor(
    private readonly proxy: Proxy,
    readonly direction: Direction,
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly onLimit: (kind: 'reset' | 'close') => void,
  ) {}

  enqueue(chunk: Buffer): void {
    this.queue.push({ chunk, arrived: performance.now() });
    this.queued += chunk.length;
    if (this.queued > HIGH_WATER) this.from.pause();
    this.pump();
  }

  /** Runs `then` once every queued byte has been written. */
  finish(then: () => void): void {
    if (this.queued === 0) then();
    else this.onEmpty = then;
  }

  /** Re-evaluates at once, e.g. after the toxics changed. */
  kick(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pump();
  }

  /** Pass what may pass now; called again by timers, 'drain' and toxic changes. */
  pump(): void {
    if (this.timer || this.waitingDrain || this.to.destroyed) return;
    const toxics = this.proxy.toxics;
    while (this.queue.length > 0) {
      if (toxics.frozen) {
        this.from.pause();
        return;
      }
      const now = performance.now();
      const head = this.queue[0]!;
      const due = head.arrived + toxics.latencyMs;
      if (due > now) return this.wait(due - now);
      let size = head.chunk.length;
      if (toxics.bandwidth !== undefined) {
        if (this.nextFree > now) return this.wait(this.nextFree - now);
        size = Math.min(size, Math.max(1, Math.floor(toxics.bandwidth * BANDWIDTH_SLICE_S)));
        this.nextFree = now + (size / toxics.bandwidth) * 1000;
      }
      const limit = toxics.limitDirection === this.direction ? (toxics.resetAfterBytes ?? toxics.closeAfterBytes) : undefined;
      const kind = toxics.resetAfterBytes !== undefined ? 'reset' : 'close';
      let allowance = Infinity;
      if (limit !== undefined) {
        allowance = limit - (this.passed - this.limitBase);
        if (allowance <= 0) return this.onLimit(kind);
        size = Math.min(size, allowance);
      }
      const piece = head.chunk.subarray(0, size);
      if (size === head.chunk.length) this.queue.shift();
      else head.chunk = head.chunk.subarray(size);
      this.queued -= size;
      this.passed += size;
      this.proxy.counters[this.direction === 'up' ? 'bytesUp' : 'bytesDown'] += size;
      const flushed = this.to.write(piece, size === allowance ? () => this.onLimit(kind) : undefined);
      if (size === allowance) return;
      if (!flushed) {
        this.waitingDrain = true;
        this.to.once('drain', () => {
          this.waitingDrain = false;
          this.pump();
        });
        return;
      }
    }
    if (!toxics.frozen) this.from.resume();
    const onEmpty = this.onEmpty;
    this.onEmpty = undefined;
    onEmpty?.();
  }

  private wait(ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, Math.ceil(ms));
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue = [];
  }
}

class Connection {
  readonly up: Link;
  readonly down: Link;
  private readonly framer: RequestFramer | undefined;
  private faulted = false;

  constructor(
    private readonly proxy: Proxy,
    readonly client: Socket,
    readonly upstream: Socket,
    http: boolean,
    private readonly onGone: (connection: Connection) => void,
  ) {
    const onLimit = (kind: 'reset' | 'close') => this.end(kind);
    this.up = new Link(proxy, 'up', client, upstream, onLimit);
    this.down = new Link(proxy, 'down', upstream, client, onLimit);
    this.framer = http ? new RequestFramer() : undefined;
    client.on('data', (chunk: Buffer) => this.fromClient(chunk));
    upstream.on('data', (chunk: Buffer) => this.down.enqueue(chunk));
    // A FIN from one side is passed on after the bytes queued before it.
    client.on('end', () => this.up.finish(() => upstream.end()));
    upstream.on('end', () => this.down.finish(() => client.end()));
    // The target closing first still lets the queued bytes reach the client.
    upstream.on('close', () => this.down.finish(() => client.end()));
    client.on('close', () => this.destroy());
    client.on('error', () => this.destroy());
    // The target is down or broke off: the client sees a reset (ECONNRESET, also when
    // the target refused: the proxy had already accepted).
    upstream.on('error', () => {
      if (!this.faulted) client.resetAndDestroy();
      this.destroy();
    });
  }

  private fromClient(chunk: Buffer): void {
    if (this.faulted) return; // the request was answered by the proxy; its body is dropped
    if (!this.framer) return this.up.enqueue(chunk);
    for (const segment of this.framer.push(chunk)) {
      if ('data' in segment) {
        this.up.enqueue(segment.data);
        continue;
      }
      this.proxy.counters.requests++;
      const fault = this.proxy.takeFault(segment.info);
      if (!fault) {
        this.up.enqueue(segment.head);
        continue;
      }
      // Answer in place of the target, then close. The client may still be sending
      // a body: keep reading (and dropping) it so it gets no RST.
      this.faulted = true;
      this.proxy.counters.httpFaults++;
      this.up.stop();
      this.upstream.destroy();
      this.client.end(httpAnswer(fault));
      setTimeout(() => this.client.destroy(), FAULTED_LINGER_MS).unref();
      return;
    }
  }

  /** Resets or closes both sides after a limit. */
  end(kind: 'reset' | 'close'): void {
    if (this.client.destroyed && this.upstream.destroyed) return;
    this.proxy.counters[kind === 'reset' ? 'resets' : 'closes']++;
    this.up.stop();
    this.down.stop();
    if (kind === 'reset') {
      this.client.resetAndDestroy();
      this.upstream.resetAndDestroy();
    } else {
      this.client.end();
      this.upstream.destroy();
    }
  }

  destroy(): void {
    this.up.stop();
    this.down.stop();
    this.client.destroy();
    this.upstream.destroy();
    this.onGone(this);
  }

  kick(): void {
    this.up.kick();
    this.down.kick();
  }
}

/** Listens on `port` of 127.0.0.1, retrying briefly while the port is still taken. */
async function listen(server: Server, port: number): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      await new Promise<void>((resolveListen, rejectListen) => {
        server.once('error', rejectListen);
        server.listen(port, '127.0.0.1', () => {
          server.off('error', rejectListen);
          resolveListen();
        });
      });
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('server has no TCP address');
      return address.port;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || port === 0 || attempt >= 20) throw error;
      await sleep(50);
    }
  }
}

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target =
    typeof options.target === 'string'
      ? (() => {
          const url = new URL(options.target);
          return { host: url.hostname, port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)) };
        })()
      : options.target;
  const http = options.http ?? true;
  const connections = new Set<Connection>();
  const faults: (HttpFault & { left: number })[] = [];
  const proxy: Proxy = {
    toxics: { ...NO_TOXICS },
    counters: { connections: 0, open: 0, bytesUp: 0, bytesDown: 0, requests: 0, httpFaults: 0, resets: 0, closes: 0 },
    takeFault(head) {
      const index = faults.findIndex((fault) => !fault.match || fault.match(head));
      if (index < 0) return undefined;
      const fault = faults[index]!;
      if (--fault.left <= 0) faults.splice(index, 1);
      return fault;
    },
  };

  const makeServer = () =>
    // Half-open both ways: a client's FIN (end of request) must not end the response.
    // No Nagle: a small write (headers) must not wait for the peer's delayed ACK.
    createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
      proxy.counters.connections++;
      const upstream = connect({ ...target, allowHalfOpen: true, noDelay: true });
      const connection = new Connection(proxy, client, upstream, http, (gone) => connections.delete(gone));
      connections.add(connection);
    });

  let server: Server | undefined = makeServer();
  const port = await listen(server, options.port ?? 0);
  let closed = false;

  const dropConnections = () => {
    for (const connection of connections) connection.destroy();
  };
  const refuse = async () => {
    const current = server;
    if (!current) return;
    server = undefined;
    const stopped = new Promise<void>((resolveClose) => current.close(() => resolveClose()));
    dropConnections();
    await stopped;
    // In-process clients see the FIN of a dropped keep-alive socket only when their
    // event loop next polls; wait so that "refused" means refused, not a reset.
    await sleep(20);
  };

  const set = (toxics: Partial<Toxics>) => {
    const limitChanged =
      ('resetAfterBytes' in toxics && toxics.resetAfterBytes !== proxy.toxics.resetAfterBytes) ||
      ('closeAfterBytes' in toxics && toxics.closeAfterBytes !== proxy.toxics.closeAfterBytes) ||
      ('limitDirection' in toxics && toxics.limitDirection !== proxy.toxics.limitDirection);
    proxy.toxics = { ...proxy.toxics, ...toxics };
    for (const connection of connections) {
      if (limitChanged) for (const link of [connection.up, connection.down]) link.limitBase = link.passed;
      connection.kick();
    }
  };

  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    get toxics() {
      return proxy.toxics;
    },
    set,
    clear() {
      faults.length = 0;
      set(NO_TOXICS);
    },
    failRequests(fault) {
      if (!http) throw new Error('failRequests needs a proxy started with http: true');
      faults.push({ ...fault, left: fault.count ?? 1 });
    },
    refuse,
    async accept() {
      if (closed) throw new Error('fault proxy is closed');
      if (server) return;
      const next = makeServer();
      await listen(next, port);
      server = next;
    },
    dropConnections,
    stats: () => ({ ...proxy.counters, open: connections.size }),
    async close() {
      closed = true;
      await refuse();
    },
  };
}
