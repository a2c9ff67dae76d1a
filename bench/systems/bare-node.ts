/**
 * The ceiling column of the memory-hit scenarios: bare-node-server.ts on the
 * same Node and CPU as tubecache, serving the same bytes from one Buffer.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EdgeOptions } from './nginx.js';
import { freePort, spawnPinned, stopChild, waitUntilServing, type System } from './process.js';

const SERVER = fileURLToPath(new URL('./bare-node-server.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export async function startBareNode(options: EdgeOptions): Promise<System> {
  const port = await freePort();
  const logFile = join(options.dir, 'bare-node.log');
  const settings = JSON.stringify({ port, originUrl: options.originUrl, token: options.token, paths: options.paths });
  const child = spawnPinned(process.execPath, ['--import', 'tsx', SERVER, settings], { cpus: options.cpus, logFile, cwd: ROOT });
  const url = `http://127.0.0.1:${port}`;
  await waitUntilServing(`${url}/healthz`, child, logFile);
  return { name: 'node', url, version: `bare node:http (Node ${process.version})`, pid: child.pid!, stop: () => stopChild(child, 'SIGTERM') };
}
