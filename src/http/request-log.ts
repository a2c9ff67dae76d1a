import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';

/** What every request is logged and traced by, on the koa listeners and on the memory-hit fast path alike. */

const CALLER_ID = /^[\w.-]{1,64}$/;

/** The caller's X-Request-Id when it is a short plain token, else a new one. */
export const requestId = (incoming: string | undefined): string => (incoming && CALLER_ID.test(incoming) ? incoming : randomUUID());

/** One `request` line when the response is over, so status, bytes and time are the final ones: id (in `log`), route, status, the tier that served it, bytes and time. */
export function logWhenOver(log: Logger, req: IncomingMessage, res: ServerResponse, outcome: () => { status: number; cache: unknown; streamError: unknown }): void {
  const started = performance.now();
  const socket = req.socket;
  const written = socket.bytesWritten;
  res.once('close', () => {
    const { status, cache, streamError } = outcome();
    log.info(
      {
        method: req.method,
        url: req.url,
        status,
        cache,
        bytes: socket.bytesWritten - written,
        ms: Math.round(performance.now() - started),
        ...(streamError ? { ended: (streamError as Error).message } : {}),
        ...(res.writableFinished ? {} : { aborted: true }),
      },
      'request',
    );
  });
}
