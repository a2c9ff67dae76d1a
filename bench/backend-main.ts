/**
 * The bench's backend process: the YouTube-like origin (test/helpers/origin.ts)
 * Its own process so it does not share an event loop with the load generator; the parent drives it
 * over IPC (bench/backend.ts).
 */
import { startOrigin, type Fault } from '../test/helpers/origin.js';
import { VIDEO_KINDS, videoBytes, type VideoDecl } from './videos.js';
import type { BackendReady, BackendRequest, MediaStats } from './backend.js';

const send = (message: unknown) => process.send!(message);

const origin = await startOrigin();

const handlers = {
  /** Adds the videos and mints one long-lived signed URL each, for the proxies that cannot run yt-dlp. */
  addVideos(decls: VideoDecl[]): Record<string, string> {
    const paths: Record<string, string> = {};
    for (const decl of decls) {
      const { duration } = VIDEO_KINDS[decl.kind];
      origin.addVideo(decl.id, videoBytes(decl.kind), { reportDuration: decl.noDuration ? undefined : duration, expiresInSeconds: 24 * 3600 });
      const url = new URL(origin.issueUrl(decl.id));
      paths[decl.id] = url.pathname + url.search;
    }
    return paths;
  },
  setThrottle(ids: string[], bytesPerSecond: number | undefined): void {
    for (const id of ids) origin.setThrottle(id, bytesPerSecond);
  },
  setFault(id: string, fault: Fault | undefined): void {
    origin.setFault(id, fault);
  },
  stats(id: string): MediaStats {
    const stats = origin.statsFor(id);
    return {
      mediaRequests: stats.mediaRequests,
      mediaBytes: stats.mediaBytes,
      resolves: stats.resolves,
      requests: stats.requests.map(({ range, status, bytes }) => ({ range, status, bytes })),
    };
  },
  async close(): Promise<void> {
    await origin.close();
  },
};

process.on('message', async ({ seq, method, args }: BackendRequest) => {
  try {
    const handler = handlers[method] as (...values: unknown[]) => unknown;
    send({ seq, result: await handler(...args) });
  } catch (error) {
    send({ seq, error: (error as Error).stack ?? String(error) });
  }
  if (method === 'close') process.disconnect();
});
// The parent died without closing us: do not linger.
process.on('disconnect', () => process.exit(0));

const ready: BackendReady = { originUrl: origin.url, token: origin.token };
send({ ready });

export type BackendHandlers = typeof handlers;
