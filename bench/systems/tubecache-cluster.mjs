/**
 * Several tubecache processes on one port (the bench's BENCH_PROCESSES): a
 * node:cluster primary forks `bin/tubecache.js serve` N times, and the
 * workers' listen() shares the primary's socket (it hands each new connection
 * to the next worker). Each worker is a whole node: its own memory budget,
 * disk-tier index, lease identity and /metrics. Run as
 * `node [flags] tubecache-cluster.mjs BIN N`; the workers get the same flags.
 */
import cluster from 'node:cluster';

const [bin, count] = [process.argv[2], Number(process.argv[3])];
cluster.setupPrimary({ exec: bin, args: ['serve'] });
for (let worker = 0; worker < count; worker++) cluster.fork();
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
  });
}
cluster.on('exit', () => {
  if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
});
