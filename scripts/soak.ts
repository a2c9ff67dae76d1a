/**
 * `npm run soak`: a real `tubecache serve` under mixed traffic for SOAK_CYCLES
 * cycles (default 3) of SOAK_SECONDS (default 60): whole reads (hits, and
 * misses of videos added each cycle), seeks, clients that leave mid-body,
 * prefetches and one prune per cycle. After each cycle, with the traffic
 * stopped, it reads the process's RSS, open fds, sockets and event-loop delay
 * (p99 over the cycle), with each socket's peer. These should stay flat from
 * cycle to cycle; the exit code is 1 when a body was wrong, or fds or sockets
 * other than the S3 and origin keep-alive pools grew, or a pooled socket holds an unread body.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { request } from 'node:http';
import { fixture, newVideoId, sha256, startHarness } from '../test/helpers/harness.js';
import { startServe, streamGet } from '../test/faults/support.js';
import { chooseTestS3 } from '../test/helpers/s3.js';

const CYCLES = Number(process.env.SOAK_CYCLES ?? 3);
const SECONDS = Number(process.env.SOAK_SECONDS ?? 60);
const CLIENTS = 20;
const NEW_VIDEOS_PER_CYCLE = 5;
const TOKEN = 'soak-admin-token-0123456789abcdef';


// S3 (RGW from S3_TEST_ENDPOINT) when there is one, as a production node runs; else the disk store.
const s3Choice = await chooseTestS3();
console.log(`store: ${s3Choice.available ? 'S3' : 'disk'} (${s3Choice.reason})`);
const h = await startHarness({ store: s3Choice.available ? 's3' : 'disk' });
const serve = await startServe({ ...h.env, ADMIN_TOKEN: TOKEN, MEMORY_CACHE_BYTES: '16MiB', LOG_LEVEL: 'warn' });
const pid = serve.child.pid!;
const videos: string[] = [];
const addVideos = (n: number) => {
  for (let i = 0; i < n; i++) {
    const id = newVideoId();
    h.origin.addVideo(id, fixture, { reportDuration: 30 });
    videos.push(id);
  }
};

/** POST with the admin token; resolves with the status. */
const post = (path: string, body = '') =>
  new Promise<number>((resolve, reject) => {
    const req = request(`${serve.url}${path}`, { method: 'POST', agent: false, headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });

const pick = <T>(items: T[]) => items[Math.floor(Math.random() * items.length)]!;
let wrong = 0;
let requests = 0;

/** One client action, checked: a whole read, a seek (a range), a client that leaves, or a prefetch. */
async function act(): Promise<void> {
  requests++;
  const id = pick(videos);
  const roll = Math.random();
  if (roll < 0.4) {
    const reply = await streamGet(`${serve.url}/proxy/${id}`);
    if (!reply.complete || reply.sha256 !== sha256(fixture)) wrong++;
  } else if (roll < 0.7) {
    const start = Math.floor(Math.random() * fixture.length);
    const end = Math.min(fixture.length - 1, start + Math.floor(Math.random() * 512 * 1024));
    if ((await rangeGet(id, start, end)) !== sha256(fixture.subarray(start, end + 1))) wrong++;
  } else if (roll < 0.9) {
    const reply = await streamGet(`${serve.url}/proxy/${id}`, { abortAfterBytes: Math.floor(Math.random() * fixture.length) });
    if (reply.bytes > 0 && reply.sha256 !== sha256(fixture.subarray(0, reply.bytes))) wrong++;
  } else {
    await post(`/prefetch/${id}`);
  }
}

/** The sha256 of bytes [start, end] as served for a Range request. */
const rangeGet = (id: string, start: number, end: number) =>
  new Promise<string>((resolve, reject) => {
    const req = request(`${serve.url}/proxy/${id}`, { agent: false, headers: { Range: `bytes=${start}-${end}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('close', () => resolve(sha256(Buffer.concat(chunks))));
    });
    req.on('error', reject);
    req.end();
  });

/** Whose each TCP socket is, by port: clients (the service's own port), S3, the origin, or other. */
const ports = { clients: Number(new URL(serve.url).port), s3: h.env.S3_ENDPOINT ? Number(new URL(h.env.S3_ENDPOINT).port) : -1, origin: h.origin.port };
/**
 * `unread`: sockets to S3 or the origin with bytes in their receive queue once
 * traffic has stopped — a body nobody reads, which would hold its socket forever.
 */
function socketPeers(inodes: Set<string>): Record<string, number> {
  const peers: Record<string, number> = { clients: 0, s3: 0, origin: 0, other: 0, unread: 0 };
  for (const table of ['tcp', 'tcp6']) {
    const path = `/proc/${pid}/net/${table}`;
    if (!existsSync(path)) continue;
    for (const line of readFileSync(path, 'utf8').trim().split('\n').slice(1)) {
      // sl, local address:port, remote address:port, state, tx_queue:rx_queue, …, inode (hex ports and queues).
      const fields = line.trim().split(/\s+/);
      if (!inodes.has(fields[9]!)) continue;
      const port = (address: string) => Number.parseInt(address.split(':')[1]!, 16);
      const [local, remote] = [port(fields[1]!), port(fields[2]!)];
      const peer = local === ports.clients ? 'clients' : remote === ports.s3 ? 's3' : remote === ports.origin ? 'origin' : 'other';
      peers[peer]!++;
      if ((peer === 's3' || peer === 'origin') && Number.parseInt(fields[4]!.split(':')[1]!, 16) > 0) peers.unread!++;
    }
  }
  return peers;
}

/** What the service process holds, read from /proc and its /metrics. */
async function sample() {
  const fds = readdirSync(`/proc/${pid}/fd`);
  const inodes = new Set(
    fds.flatMap((fd) => {
      try {
        return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? [];
      } catch {
        return [];
      }
    }),
  );
  const sockets = inodes.size;
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024;
  const metrics = await fetch(`${serve.url}/metrics`).then((response) => response.text());
  const gauge = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1]);
  const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
  return {
    rssMiB: mib(rss),
    heapMiB: mib(gauge('nodejs_heap_size_used_bytes')),
    externalMiB: mib(gauge('nodejs_external_memory_bytes')),
    fds: fds.length,
    sockets,
    peers: socketPeers(inodes),
    eventLoopP99Ms: Math.round(gauge('nodejs_eventloop_lag_p99_seconds') * 1000),
  };
}

addVideos(10);
const cycles: (Awaited<ReturnType<typeof sample>> & { cycle: number; requests: number })[] = [];
for (let cycle = 1; cycle <= CYCLES; cycle++) {
  addVideos(NEW_VIDEOS_PER_CYCLE);
  const until = Date.now() + SECONDS * 1000;
  const before = requests;
  const pruned = (async () => {
    await new Promise((resolve) => setTimeout(resolve, (SECONDS * 1000) / 2));
    await post('/admin/prune', JSON.stringify({ ttl: `${Math.max(1, Math.floor(SECONDS / 2))}s` }));
  })();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (Date.now() < until) await act();
    }),
  );
  await pruned;
  // Let uploads and keep-alive sockets settle before reading the process.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  cycles.push({ cycle, requests: requests - before, ...(await sample()) });
  process.stdout.write(`${JSON.stringify(cycles.at(-1))}\n`);
}

serve.child.kill('SIGTERM');
await serve.exited;
await h.close();
const [first, last] = [cycles[0]!, cycles.at(-1)!];
// Idle keep-alive connections to S3 and the origin stay open as many as the last burst needed (the agents bound them):
// a pool, not a leak, as long as none of them holds an unread body. Everything else must stay flat.
const pooled = (c: (typeof cycles)[number]) => c.peers.s3! + c.peers.origin!;
const grew =
  last.fds - pooled(last) > first.fds - pooled(first) + 5 ||
  last.sockets - pooled(last) > first.sockets - pooled(first) + 5 ||
  cycles.some((c) => c.peers.unread! > 0);
process.stdout.write(`\ncycle  requests  RSS MiB  heap MiB  Buffers MiB  fds  sockets (S3 / origin / other)  event-loop p99 ms\n`);
for (const c of cycles) {
  const socketColumn = `${c.sockets} (${c.peers.s3} / ${c.peers.origin} / ${c.peers.clients! + c.peers.other!}; ${c.peers.unread} unread)`;
  process.stdout.write(`${String(c.cycle).padEnd(7)}${String(c.requests).padEnd(10)}${String(c.rssMiB).padEnd(9)}${String(c.heapMiB).padEnd(10)}${String(c.externalMiB).padEnd(13)}${String(c.fds).padEnd(5)}${socketColumn.padEnd(32)}${c.eventLoopP99Ms}\n`);
}
process.stdout.write(`\nwrong bodies: ${wrong}; fds and sockets beside the keep-alive pools ${grew ? 'GREW' : 'flat'} from cycle 1 to ${CYCLES}\n`);
process.exitCode = wrong > 0 || grew ? 1 : 0;
