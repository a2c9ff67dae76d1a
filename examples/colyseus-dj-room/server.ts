import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { Server } from '@colyseus/core';
import { WebSocketTransport } from '@colyseus/ws-transport';
import { createTubecacheClient, type TubecacheClient } from 'tubecache/client';
import { DjRoom } from './room.js';

export interface DjServer {
  /** `ws://host:port`, for `new Client(url)` in colyseus.js. */
  url: string;
  close(): Promise<void>;
}

/** A Colyseus server with the `dj` room type and `dj-audio`, its audio-only twin (tubecache's `audio` format); port 0 picks a free port. */
export async function startDjServer(options: { tubecache: TubecacheClient; port?: number; host?: string; audioFormat?: string }): Promise<DjServer> {
  const http = createServer();
  // Shutdown is the caller's: Colyseus would otherwise install its own SIGINT/SIGTERM handlers that exit the process.
  const gameServer = new Server({ transport: new WebSocketTransport({ server: http }), greet: false, gracefullyShutdown: false });
  gameServer.define('dj', DjRoom, { tubecache: options.tubecache });
  gameServer.define('dj-audio', DjRoom, { tubecache: options.tubecache, format: options.audioFormat ?? 'audio' });
  const host = options.host ?? '127.0.0.1';
  await gameServer.listen(options.port ?? 0, host);
  const { port } = http.address() as AddressInfo;
  return { url: `ws://${host}:${port}`, close: () => gameServer.gracefullyShutdown(false) };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const tubecache = createTubecacheClient({
    baseUrl: process.env.TUBECACHE_URL ?? 'http://127.0.0.1:8080',
    ...(process.env.TUBECACHE_PUBLIC_URL ? { publicUrl: process.env.TUBECACHE_PUBLIC_URL } : {}),
    ...(process.env.PREFETCH_QUEUE_DEPTH ? { prefetchQueueDepth: Number(process.env.PREFETCH_QUEUE_DEPTH) } : {}),
  });
  const server = await startDjServer({ tubecache, port: Number(process.env.PORT ?? 2567), host: process.env.HOST ?? '127.0.0.1', ...(process.env.AUDIO_FORMAT ? { audioFormat: process.env.AUDIO_FORMAT } : {}) });
  console.log(`dj room on ${server.url} (tubecache ${tubecache.baseUrl}, PREFETCH_QUEUE_DEPTH=${tubecache.prefetchQueueDepth})`);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void server.close());
}
