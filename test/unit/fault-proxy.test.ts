import { createHash, randomBytes } from 'node:crypto';
import { Agent, createServer as createHttpServer, request, type IncomingMessage } from 'node:http';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { slowDown, startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';

const BODY = randomBytes(1024 * 1024);
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

async function listening(server: Server): Promise<number> {
  await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
  return (server.address() as AddressInfo).port;
}

/** An HTTP server answering GET /big with BODY and PUT with the sha256 of what it read; counts requests. */
async function target(t: ExecutionContext) {
  const seen: string[] = [];
  const aborted: string[] = [];
  const server = createHttpServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (req.method === 'PUT') {
      const hash = createHash('sha256');
      req.on('data', (chunk: Buffer) => hash.update(chunk));
      req.on('error', () => aborted.push(req.url ?? ''));
      req.on('end', () => res.end(hash.digest('hex')));
      return;
    }
    res.end(req.url === '/big' ? BODY : 'ok');
  });
  const port = await listening(server);
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return { port, seen, aborted };
}

async function proxyTo(t: ExecutionContext, port: number, http = true): Promise<FaultProxy> {
  const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port }, http });
  t.teardown(() => proxy.close());
  return proxy;
}

interface Answer {
  status?: number;
  body: Buffer;
  error?: string;
}

/** One HTTP request; resolves with what arrived, including a transport error instead of throwing. */
function fetchRaw(url: string, options: { method?: string; body?: Buffer; agent?: Agent; chunked?: boolean } = {}): Promise<Answer> {
  return new Promise((resolveAnswer) => {
    const chunks: Buffer[] = [];
    let status: number | undefined;
    const done = (error?: NodeJS.ErrnoException) =>
      resolveAnswer({ status, body: Buffer.concat(chunks), ...(error ? { error: error.code ?? error.message } : {}) });
    const req = request(
      url,
      {
        method: options.method ?? 'GET',
        agent: options.agent ?? false,
        headers: options.body && !options.chunked ? { 'content-length': options.body.length } : {},
      },
      (res: IncomingMessage) => {
        status = res.statusCode;
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => done());
        res.on('error', done);
        res.on('aborted', () => done(Object.assign(new Error('aborted'), { code: 'ABORTED' })));
      },
    );
    req.on('error', done);
    if (options.body && options.chunked) {
      // Two writes without a length: Transfer-Encoding: chunked.
      req.write(options.body.subarray(0, 1000));
      req.end(options.body.subarray(1000));
    } else req.end(options.body);
  });
}

test('passes bytes both ways unchanged and counts them (raw TCP)', async (t) => {
  const echo = createServer((socket) => socket.pipe(socket));
  const port = await listening(echo);
  t.teardown(() => echo.close());
  const proxy = await proxyTo(t, port, false);

  const socket = connect(proxy.port, '127.0.0.1');
  const received: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  socket.end(BODY);
  await new Promise((resolveClose) => socket.on('close', resolveClose));
  t.is(sha256(Buffer.concat(received)), sha256(BODY));
  const stats = proxy.stats();
  t.is(stats.connections, 1);
  t.is(stats.bytesUp, BODY.length);
  t.is(stats.bytesDown, BODY.length);
});

test('latency delays each direction; clearing it applies to the open connection', async (t) => {
  const { port } = await target(t);
  const proxy = await proxyTo(t, port);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  proxy.set({ latencyMs: 200 });
  let started = performance.now();
  t.is((await fetchRaw(`${proxy.endpoint}/small`, { agent })).body.toString(), 'ok');
  const slow = performance.now() - started;
  t.true(slow >= 390, `a round trip with 200 ms each way took ${slow.toFixed(0)} ms`);
  proxy.clear();
  started = performance.now();
  await fetchRaw(`${proxy.endpoint}/small`, { agent });
  t.true(performance.now() - started < slow, 'latency cleared');
  t.is(proxy.stats().connections, 1, 'one keep-alive connection');
});

test('bandwidth limits the bytes per second', async (t) => {
  const { port } = await target(t);
  const proxy = await proxyTo(t, port);
  proxy.set({ bandwidth: 1024 * 1024 }); // BODY in about 1 s
  const started = performance.now();
  const answer = await fetchRaw(`${proxy.endpoint}/big`);
  const elapsed = performance.now() - started;
  t.is(sha256(answer.body), sha256(BODY));
  t.true(elapsed >= 900, `1 MiB at 1 MiB/s took ${elapsed.toFixed(0)} ms`);
});

test('freeze: accepts, answers nothing, then lets the held bytes through', async (t) => {
  const { port, seen } = await target(t);
  const proxy = await proxyTo(t, port);
  proxy.set({ frozen: true });
  let answered = false;
  const pending = fetchRaw(`${proxy.endpoint}/big`).then((answer) => {
    answered = true;
    return answer;
  });
  await new Promise((resolveWait) => setTimeout(resolveWait, 500));
  t.false(answered, 'no answer while frozen');
  t.is(proxy.stats().connections, 1, 'the connection was accepted');
  t.deepEqual(seen, [], 'the request did not reach the target');

  proxy.set({ frozen: false });
  const answer = await pending;
  t.is(answer.status, 200);
  t.is(sha256(answer.body), sha256(BODY));
});

test('freeze mid-body stops an open response; unfreeze completes it exactly', async (t) => {
  const { port } = await target(t);
  const proxy = await proxyTo(t, port);
  proxy.set({ bandwidth: 2 * 1024 * 1024 });
  const pending = fetchRaw(`${proxy.endpoint}/big`);
  while (proxy.stats().bytesDown < 100_000) await new Promise((resolveWait) => setTimeout(resolveWait, 10));
  proxy.set({ frozen: true });
  const atFreeze = proxy.stats().bytesDown;
  await new Promise((resolveWait) => setTimeout(resolveWait, 300));
  t.is(proxy.stats().bytesDown, atFreeze, 'no bytes pass while frozen');
  t.true(atFreeze < BODY.length);
  proxy.clear();
  const answer = await pending;
  t.is(sha256(answer.body), sha256(BODY));
});

test('resetAfterBytes: the client gets ECONNRESET mid-body', async (t) => {
  const { port } = await target(t);
  const proxy = await proxyTo(t, port);
  proxy.set({ resetAfterBytes: 200_000 });
  const answer = await fetchRaw(`${proxy.endpoint}/big`);
  t.is(answer.error !== undefined, true, 'the transfer failed');
  t.true(answer.body.length < 200_000, `${answer.body.length} body bytes arrived`);
  t.deepEqual(answer.body, BODY.subarray(0, answer.body.length), 'what arrived is a prefix');
  t.is(proxy.stats().resets, 1);
  t.true(proxy.stats().bytesDown <= 200_000);

  proxy.clear();
  t.is(sha256((await fetchRaw(`${proxy.endpoint}/big`)).body), sha256(BODY), 'cleared: whole bodies again');
});

test('closeAfterBytes: the response ends short with a FIN', async (t) => {
  const { port } = await target(t);
  const proxy = await proxyTo(t, port);
  proxy.set({ closeAfterBytes: 300_000 });
  const answer = await fetchRaw(`${proxy.endpoint}/big`);
  t.truthy(answer.error, 'the client noticed the short body');
  t.true(answer.body.length < 300_000 && answer.body.length > 250_000, `${answer.body.length} body bytes arrived`);
  t.deepEqual(answer.body, BODY.subarray(0, answer.body.length));
  t.is(proxy.stats().closes, 1);
});

test("limitDirection 'up' cuts a request body; the target sees an aborted upload", async (t) => {
  const { port, aborted } = await target(t);
  const proxy = await proxyTo(t, port);
  proxy.set({ resetAfterBytes: 100_000, limitDirection: 'up' });
  const answer = await fetchRaw(`${proxy.endpoint}/upload`, { method: 'PUT', body: BODY });
  t.truthy(answer.error);
  while (aborted.length === 0) await new Promise((resolveWait) => setTimeout(resolveWait, 10));
  t.deepEqual(aborted, ['/upload']);
});

test('refuse() makes connecting fail with ECONNREFUSED; accept() serves again on the same port', async (t) => {
  const { port } = await target(t);
  const proxy = await proxyTo(t, port);
  await proxy.refuse();
  await proxy.refuse(); // idempotent
  t.is((await fetchRaw(`${proxy.endpoint}/small`)).error, 'ECONNREFUSED');
  await proxy.accept();
  t.is((await fetchRaw(`${proxy.endpoint}/small`)).body.toString(), 'ok');
});

test('failRequests answers the next N matching requests itself, on fresh and keep-alive connections', async (t) => {
  const { port, seen } = await target(t);
  const proxy = await proxyTo(t, port);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());

  // Bodies of both framings pass through the request tracking intact.
  t.is((await fetchRaw(`${proxy.endpoint}/a`, { method: 'PUT', body: BODY, agent })).body.toString(), sha256(BODY));
  t.is((await fetchRaw(`${proxy.endpoint}/b`, { method: 'PUT', body: BODY, agent, chunked: true })).body.toString(), sha256(BODY));

  proxy.failRequests({ ...slowDown, count: 2, match: (head) => head.method === 'GET' });
  const first = await fetchRaw(`${proxy.endpoint}/big`, { agent }); // on the pooled connection
  t.is(first.status, 503);
  t.regex(first.body.toString(), /<Code>SlowDown<\/Code>/);
  t.is((await fetchRaw(`${proxy.endpoint}/c`, { method: 'PUT', body: Buffer.from('x'), agent })).status, 200, 'not matched: passes');
  t.is((await fetchRaw(`${proxy.endpoint}/big`, { agent })).status, 503);
  const third = await fetchRaw(`${proxy.endpoint}/big`, { agent });
  t.is(third.status, 200);
  t.is(sha256(third.body), sha256(BODY));

  t.deepEqual(seen, ['PUT /a', 'PUT /b', 'PUT /c', 'GET /big'], 'faulted requests never reached the target');
  const stats = proxy.stats();
  t.is(stats.httpFaults, 2);
  t.is(stats.requests, 6);
});

test('a faulted upload is answered without the client seeing a reset', async (t) => {
  const { port, seen } = await target(t);
  const proxy = await proxyTo(t, port);
  proxy.failRequests({ status: 500, body: 'broken' });
  const answer = await fetchRaw(`${proxy.endpoint}/up`, { method: 'PUT', body: BODY });
  t.is(answer.status, 500);
  t.is(answer.body.toString(), 'broken');
  t.is(answer.error, undefined);
  t.deepEqual(seen, []);
});

test('dropConnections() closes open connections and keeps listening', async (t) => {
  const { port } = await target(t);
  const proxy = await proxyTo(t, port);
  proxy.set({ frozen: true });
  const pending = fetchRaw(`${proxy.endpoint}/big`);
  while (proxy.stats().open === 0) await new Promise((resolveWait) => setTimeout(resolveWait, 10));
  proxy.dropConnections();
  t.truthy((await pending).error);
  t.is(proxy.stats().open, 0);
  proxy.clear();
  t.is((await fetchRaw(`${proxy.endpoint}/small`)).body.toString(), 'ok');
});
