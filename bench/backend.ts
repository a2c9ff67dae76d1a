/** The parent's handle on the backend process (bench/backend-main.ts): typed calls over IPC. */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { BackendHandlers } from './backend-main.js';

export interface MediaStats {
  mediaRequests: number;
  /** Body bytes the origin handed to its sockets for this video. */
  mediaBytes: number;
  /** yt-dlp runs for this video. */
  resolves: number;
  requests: { range: string | undefined; status: number; bytes: number }[];
}

export interface BackendReady {
  originUrl: string;
  token: string;
}

type Method = keyof BackendHandlers;
export interface BackendRequest {
  seq: number;
  method: Method;
  args: unknown[];
}

export type Backend = BackendReady & {
  readonly pid: number;
  call<M extends Method>(method: M, ...args: Parameters<BackendHandlers[M]>): Promise<Awaited<ReturnType<BackendHandlers[M]>>>;
  close(): Promise<void>;
};

/** Starts the backend. */
export async function startBackend(): Promise<Backend> {
  const child: ChildProcess = fork(fileURLToPath(new URL('./backend-main.ts', import.meta.url)), [], {
    execArgv: ['--import', 'tsx'],
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  let seq = 0;
  const ready = new Promise<BackendReady>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`backend exited with ${code} before it was ready`)));
    child.on('message', (message: { ready?: BackendReady; seq?: number; result?: unknown; error?: string }) => {
      if (message.ready) return resolve(message.ready);
      const call = pending.get(message.seq!);
      pending.delete(message.seq!);
      if (message.error) call?.reject(new Error(`backend: ${message.error}`));
      else call?.resolve(message.result);
    });
  });
  const info = await ready;
  const call = (method: Method, ...args: unknown[]) =>
    new Promise((resolve, reject) => {
      pending.set(++seq, { resolve, reject });
      child.send({ seq, method, args } satisfies BackendRequest);
    });
  return {
    ...info,
    pid: child.pid!,
    call: call as Backend['call'],
    async close() {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      await call('close').catch(() => child.kill());
      await exited;
    },
  };
}
