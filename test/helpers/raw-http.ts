import { connect } from 'node:net';

export interface RawReply {
  status: number;
  /** Lower-cased header names; the last value wins. */
  headers: Record<string, string>;
  body: string;
}

/**
 * One request written byte for byte on a fresh socket, so no client library
 * normalises the request target (`//`, `.`, `%2F`, `;`, case) on the way.
 * `head` adds header lines; `body` is sent after them unless `holdBody` (the
 * server must then answer from the headers alone, e.g. a 413).
 */
export function rawRequest(url: string, method: string, target: string, options: { head?: string[]; body?: string; holdBody?: boolean } = {}): Promise<RawReply> {
  const { hostname, port } = new URL(url);
  const lines = [`${method} ${target} HTTP/1.1`, `Host: ${hostname}:${port}`, 'Connection: close', ...(options.head ?? [])];
  if (options.body !== undefined && !options.head?.some((line) => /^(content-length|transfer-encoding):/i.test(line))) lines.push(`Content-Length: ${Buffer.byteLength(options.body)}`);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    socket.on('connect', () => socket.write(`${lines.join('\r\n')}\r\n\r\n${options.holdBody ? '' : (options.body ?? '')}`));
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      // A held body never comes, so the server may keep the socket open: the first complete answer is enough.
      if (options.holdBody && complete(Buffer.concat(chunks).toString('latin1'))) socket.destroy();
    });
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const reply = parse(text);
      if (!reply) reject(new Error(`no HTTP answer to ${method} ${target}: ${JSON.stringify(text.slice(0, 200))}`));
      else resolve(reply);
    });
  });
}

function parse(text: string): RawReply | undefined {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine, ...headerLines] = text.slice(0, end).split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '');
  if (!status) return undefined;
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(status[1]), headers, body: text.slice(end + 4) };
}

const complete = (text: string) => {
  const reply = parse(text);
  return reply !== undefined && reply.headers['content-length'] !== undefined && Buffer.byteLength(reply.body, 'latin1') >= Number(reply.headers['content-length']);
};
