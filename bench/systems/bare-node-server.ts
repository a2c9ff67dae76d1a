/**
 * Node's ceiling for the memory-hit scenarios: a bare node:http server that
 * fetches each video from the origin once and answers whole and ranged GETs
 * from that one Buffer — no framework, no cache, no metrics, no log. Run as its
 * own process by bare-node.ts; argv[2] is the JSON of its settings.
 */
import { createServer } from 'node:http';
import { parseRange } from '../../src/http/range.js';

const { port, originUrl, token, paths } = JSON.parse(process.argv[2]!) as { port: number; originUrl: string; token: string; paths: Record<string, string> };
const held = new Map<string, Promise<Buffer>>();

const load = (path: string) =>
  fetch(`${originUrl}${path}`, { headers: { 'X-Origin-Token': token } }).then(async (reply) => {
    if (!reply.ok) throw new Error(`origin answered ${reply.status}`);
    return Buffer.from(await reply.arrayBuffer());
  });

createServer((req, res) => {
  if (req.url === '/healthz') return res.end('ok');
  const path = paths[(req.url ?? '').slice('/proxy/'.length)];
  if (!req.url?.startsWith('/proxy/') || !path) return res.writeHead(404).end();
  let bytes = held.get(path);
  if (!bytes) held.set(path, (bytes = load(path)));
  bytes.then(
    (body) => {
      const range = parseRange(req.headers.range, body.length);
      if (range.kind === 'unsatisfiable') return res.writeHead(416, ['Content-Range', `bytes */${body.length}`]).end();
      if (range.kind === 'whole') return res.writeHead(200, ['Content-Length', String(body.length), 'X-Cache-Status', 'HIT']).end(body);
      res.writeHead(206, ['Content-Length', String(range.end - range.start + 1), 'Content-Range', `bytes ${range.start}-${range.end}/${body.length}`, 'X-Cache-Status', 'HIT']).end(body.subarray(range.start, range.end + 1));
    },
    () => res.writeHead(502).end(),
  );
}).listen(port, '127.0.0.1');
