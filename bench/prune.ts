/**
 * `npm run bench:prune`: scenario 9 alone (no proxies to start), on the disk
 * store, or on S3 when S3_ENDPOINT (and the other S3_* settings) are set.
 *
 * Environment: BENCH_PRUNE_VIDEOS=20000,100000 (the sizes), S3_* as for `npm run bench`.
 * Writes bench/results/prune-{date}-{store}.json and .md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SETTINGS } from '../src/config.js';
import { describeMachine } from './report.js';
import { measurePrune, pruneReport, pruneSizes, type PruneFigures } from './scenarios/prune.js';

const started = performance.now();
const log = (message: string) => process.stderr.write(`[bench:prune ${((performance.now() - started) / 1000).toFixed(0).padStart(4)}s] ${message}\n`);

const env = Object.fromEntries(Object.keys(SETTINGS).flatMap((name) => (name.startsWith('S3_') && process.env[name] ? [[name, process.env[name]!]] : [])));
const figures: PruneFigures[] = [];
for (const videos of pruneSizes(process.env.BENCH_PRUNE_VIDEOS)) {
  log(`${videos} videos`);
  figures.push(await measurePrune(env, videos, log));
}
const report = pruneReport(figures);
const machine = describeMachine([], {});
const date = new Date().toISOString().slice(0, 10);
const name = `prune-${date}-${env.S3_ENDPOINT ? 's3' : 'disk'}`;
const table = [
  `## ${report.title}, ${date}`,
  '',
  `Machine: ${machine.cores} × ${machine.cpu}, ${machine.memoryGiB} GiB, ${machine.kernel}; Node ${machine.node}. Load average at start: ${machine.loadAverageAtStart.join(' ')}. Store: ${env.S3_ENDPOINT ? `S3 at ${env.S3_ENDPOINT}` : 'disk (tmpfs)'}.`,
  '',
  '| metric | value |',
  '|---|---|',
  ...report.rows.map((row) => `| ${row.metric} | ${row.values.tubecache ?? ''} |`),
  '',
  `Target: ${report.target}. Met: ${report.verdict.met ? 'yes' : 'no'} (${report.verdict.measured}).`,
  '',
  ...report.notes.map((note) => `- ${note}`),
  '',
].join('\n');
const out = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(out, { recursive: true });
writeFileSync(join(out, `${name}.json`), `${JSON.stringify({ date, machine, report }, null, 2)}\n`);
writeFileSync(join(out, `${name}.md`), table);
process.stdout.write(`\n${table}\nwritten to bench/results/${name}.json and .md\n`);
