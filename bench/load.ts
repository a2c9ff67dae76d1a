/**
 * A closed-loop HTTP/1.1 load generator on raw sockets: N keep-alive
 * connections, each sending its next request when the previous response has
 * fully arrived, for a fixed time.
 *
 * Why not autocannon: it parses bodies with http-parser-js, which tops out
 * near 1 GB/s on one core here (a plain Node server handing out a 5.8 MB
 * Buffer: 160 req/s through autocannon, 790 req/s through this loop), below
 * what the systems under test deliver. Bodies here are only counted, never
 * copied or parsed, so the client is not what is measured. wrk would do as
 * well but is not installed by default.
 */
import { connect, type Socket } from 'node:net';
import { percentile } from './stats.js';

export interface LoadOptions {
  /** http://host:port of the system under test. */
  url: string;
  connections: number;
  durationMs: number;
  /** Read at most this fast per connection, like a player filling its buffer (TCP flow control pushes back on the server). */
  bytesPerSecond?: number;
  /** The next request's path and extra headers on connection number `connection` (called once per request). */
  next(connection: number): { path: string; headers?: Record<string, string> };
}

export interface LoadResult {
  requests: number;
  /** Body bytes received within the window (including responses cut at the end). */
  bytes: number;
  seconds: number;
  requestsPerSecond: number;
  bytesPerSecond: number;
  latencyMs: { p50: number; p99: number; mean: number };
  statuses: Record<string, number>;
  /** X-Cache-Status values seen, when the system sends one. */
  cacheStatus: Record<string, number>;
  errors: number;
}

const HEADER_END = Buffer.from('\r\n\r\n');

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const target = new URL(options.url);
  const port = Number(target.port || 80);
  const started = performance.now();
  const deadline = started + options.durationMs;
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  const cacheStatus: Record<string, number> = {};
  let bytes = 0;
  let errors = 0;

  const connection = (index: number) =>
    new Promise<void>((done) => {
      let socket: Socket;
      let sentAt = 0;
      let awaiting = false; // a connect or a response is due
      let header: Buffer | undefined; // bytes of a response head not complete yet
      let remaining = -1; // body bytes still expected; -1 while reading the head
      let ended = false;
      let paceFrom = 0; // when this connection started counting toward bytesPerSecond
      let paced = 0;

      const end = () => {
        if (ended) return;
        ended = true;
        clearTimeout(timer);
        socket.destroy();
        done();
      };
      const send = () => {
        if (performance.now() >= deadline) return end();
        const { path, headers = {} } = options.next(index);
        let text = `GET ${path} HTTP/1.1\r\nHost: ${target.host}\r\n`;
        for (const [name, value] of Object.entries(headers)) text += `${name}: ${value}\r\n`;
        awaiting = true;
        sentAt = performance.now();
        socket.write(`${text}\r\n`);
      };
      const onHead = (head: Buffer): boolean => {
        const text = head.toString('latin1');
        const status = text.slice(9, 12);
        statuses[status] = (statuses[status] ?? 0) + 1;
        const length = /\r\ncontent-length:\s*(\d+)/i.exec(text);
        if (!length) return false; // chunked or close-delimited: every system here sends a length
        remaining = Number(length[1]);
        const cache = /\r\nx-cache-status:\s*([^\r]*)/i.exec(text);
        if (cache) cacheStatus[cache[1]!] = (cacheStatus[cache[1]!] ?? 0) + 1;
        return true;
      };
      const onData = (chunk: Buffer) => {
        let offset = 0;
        if (remaining < 0) {
          const head: Buffer = header ? Buffer.concat([header, chunk]) : chunk;
          const at = head.indexOf(HEADER_END);
          if (at < 0) {
            header = head;
            return;
          }
          header = undefined;
          if (!onHead(head.subarray(0, at))) return socket.destroy();
          chunk = head;
          offset = at + 4;
        }
        const body = Math.min(remaining, chunk.length - offset);
        remaining -= body;
        bytes += body;
        if (options.bytesPerSecond) pace(body);
        if (remaining > 0) return;
        // Bytes after the body: not the HTTP/1.1 this loop speaks.
        if (offset + body !== chunk.length) return socket.destroy();
        remaining = -1;
        awaiting = false;
        latencies.push(performance.now() - sentAt);
        send();
      };
      const pace = (received: number) => {
        paced += received;
        const wait = paceFrom + (paced / options.bytesPerSecond!) * 1000 - performance.now();
        if (wait < 5) return;
        const current = socket;
        current.pause();
        setTimeout(() => current.resume(), wait);
      };
      const open = () => {
        header = undefined;
        remaining = -1;
        awaiting = true;
        const current = connect(port, target.hostname, send);
        socket = current;
        current.setNoDelay(true);
        current.on('data', onData);
        current.on('error', () => {});
        // Closed by the server (or by a protocol error above): an error if a response was due; reconnect.
        current.on('close', () => {
          if (ended || current !== socket) return;
          if (awaiting) errors++;
          if (performance.now() >= deadline) return end();
          setTimeout(open, awaiting ? 10 : 0);
        });
      };
      // The window closes mid-response: stop counting there.
      const timer = setTimeout(end, options.durationMs + 5);
      paceFrom = performance.now();
      open();
    });

  await Promise.all(Array.from({ length: options.connections }, (_, index) => connection(index)));
  const seconds = Math.min(performance.now(), deadline + 5) - started;
  const sorted = Float64Array.from(latencies).sort();
  return {
    requests: latencies.length,
    bytes,
    seconds: seconds / 1000,
    requestsPerSecond: (latencies.length * 1000) / seconds,
    bytesPerSecond: (bytes * 1000) / seconds,
    latencyMs: { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), mean: latencies.reduce((a, b) => a + b, 0) / (latencies.length || 1) },
    statuses,
    cacheStatus,
    errors,
  };
}
