/** One timed HTTP request: when the first body byte came, how many bytes, optionally their sha256. */
import { createHash } from 'node:crypto';
import { request, type Agent, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';

export interface ProbeOptions {
  headers?: Record<string, string>;
  /** A keep-alive agent, or false (the default) for a fresh connection. */
  agent?: Agent | false;
  /** Leave (destroy the connection) this long after the first body byte; 0 leaves at the first byte. */
  leaveAfterMs?: number;
  /** Leave this long after the request was made, whether bytes came or not. */
  leaveAfterStartMs?: number;
  hash?: boolean;
  /** Note when this many body bytes had arrived (`markedAt`): when a slice was complete at the client. */
  markAtBytes?: number;
}

export interface ProbeResult {
  /** 0 when the probe left before the response headers came. */
  status: number;
  headers: IncomingHttpHeaders;
  /** performance.now() when the request was made, its first body byte arrived (NaN: none did), it ended. */
  startedAt: number;
  firstByteAt: number;
  endedAt: number;
  /** performance.now() when `markAtBytes` had arrived (NaN: not asked, or they never did). */
  markedAt: number;
  ttfbMs: number;
  bytes: number;
  sha256: string | undefined;
  /** Content-Length bytes arrived (false when left early or cut). */
  complete: boolean;
}

export function probe(url: string, options: ProbeOptions = {}): Promise<ProbeResult> {
  return new Promise((resolve, reject) => {
    const startedAt = performance.now();
    let firstByteAt = Number.NaN;
    let markedAt = Number.NaN;
    let bytes = 0;
    let left = false;
    let settled = false;
    const hash = options.hash ? createHash('sha256') : undefined;
    const settle = (res: IncomingMessage | undefined) => {
      if (settled) return;
      settled = true;
      const expected = Number(res?.headers['content-length']);
      resolve({
        status: res?.statusCode ?? 0,
        headers: res?.headers ?? {},
        startedAt,
        firstByteAt,
        endedAt: performance.now(),
        markedAt,
        ttfbMs: firstByteAt - startedAt,
        bytes,
        sha256: hash?.digest('hex'),
        complete: !!res?.complete && (Number.isNaN(expected) || expected === bytes),
      });
    };
    const leave = () => {
      left = true;
      req.destroy();
    };
    let response: IncomingMessage | undefined;
    const req = request(url, { headers: options.headers, agent: options.agent ?? false }, (res) => {
      response = res;
      res.on('data', (chunk: Buffer) => {
        if (bytes === 0) {
          firstByteAt = performance.now();
          if (options.leaveAfterMs !== undefined) setTimeout(leave, options.leaveAfterMs);
        }
        bytes += chunk.length;
        if (options.markAtBytes !== undefined && Number.isNaN(markedAt) && bytes >= options.markAtBytes) markedAt = performance.now();
        hash?.update(chunk);
      });
      res.once('end', () => settle(res));
      res.once('close', () => settle(res));
      res.on('error', () => {});
    });
    req.on('error', (error) => (left || response ? settle(response) : reject(error)));
    if (options.leaveAfterStartMs !== undefined) {
      const timer = setTimeout(leave, options.leaveAfterStartMs);
      req.once('close', () => clearTimeout(timer));
    }
    req.end();
  });
}
