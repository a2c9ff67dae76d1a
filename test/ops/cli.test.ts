import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { VideoDetail, VideoInfo } from '../../src/ops/inspect.js';
import type { PruneSummary } from '../../src/ops/prune.js';
import type { Check } from '../../src/ops/doctor.js';
import { eventually, fixture, fixtureSha, startHarness, type Harness, type Node } from '../helpers/harness.js';
import { jsonLine, runCli, runCliInTerminal } from './run-cli.js';

const TOKEN = 'cli-test-admin-token-0123456789';
const SLICES = Math.ceil(fixture.length / (256 * 1024));

let h: Harness;
test.before(async () => {
  h = await startHarness();
});
test.after.always(() => h?.close());

/** Serves `id` whole through `node`, then waits for its uploads and its access object. */
async function serve(node: Node, id: string): Promise<void> {
  const reply = await node.get(`/proxy/${id}`);
  if (reply.sha256 !== fixtureSha) throw new Error(`served wrong bytes for ${id}`);
  await node.service.cache.idle();
  const video = node.service.cache.video(id as never);
  await eventually(async () => (await node.service.store.getText(node.service.store.keys.access(video))) !== undefined, 10_000, 'the access object');
}

const lines = (stdout: string) => stdout.trim().split('\n').filter(Boolean);

test('ls, stat and rm read and change the bucket a node filled', async (t) => {
  const bucket = await h.store.fresh();
  const env = { ...h.env, ...bucket, ADMIN_TOKEN: TOKEN };
  const node = await h.node({ ADMIN_TOKEN: TOKEN }, bucket);
  const [a, b] = [h.video(fixture, { reportDuration: 30 }), h.video(fixture, { reportDuration: 30 })];
  await serve(node, a);
  await serve(node, b);

  const ls = await runCli(['ls', '--json'], env);
  t.is(ls.exitCode, 0, ls.stderr);
  const videos = lines(ls.stdout).map((line) => JSON.parse(line) as VideoInfo);
  t.deepEqual(videos.map((video) => video.id).sort(), [a, b].sort());
  for (const video of videos) {
    t.is(video.size, fixture.length);
    t.is(video.totalSlices, SLICES);
    t.true(video.persistedSlices > 0);
    t.true(video.headSeconds! >= 10);
    t.is(video.lastAccessFrom, 'access');
    t.regex(video.createdAt!, /^\d{4}-\d\d-\d\dT/);
  }
  const { format } = videos[0]!;

  const table = await runCli(['ls'], env);
  t.is(table.exitCode, 0);
  t.regex(table.stdout, /^ID\s+FORMAT\s+SIZE\s+STORED\s+SLICES\s+HEAD\s+CREATED\s+LAST ACCESS/);
  t.true(table.stdout.includes(a) && table.stdout.includes(b));
  t.regex(table.stdout, /2 videos/);
  t.is(lines((await runCli(['ls', '--json', '--sort', 'created', '--limit', '1'], env)).stdout).length, 1);

  const stat = await runCli(['stat', '--', a], env);
  t.is(stat.exitCode, 0, stat.stderr);
  t.true(stat.stdout.includes(`${a}/${format}  (store)`));
  t.regex(stat.stdout, /slices held {2}0-\d+/);
  const [detail] = (jsonLine<{ s3: VideoDetail[] }>((await runCli(['stat', '--json', '--', a], env)).stdout)).s3;
  t.deepEqual(detail!.slices.map((slice) => slice.index), detail!.manifestBody!.persisted);
  t.deepEqual(detail!.missingSlices, []);

  const live = await runCli(['stat', '--url', node.url, '--', a], env);
  t.is(live.exitCode, 0, live.stderr);
  t.true(live.stdout.includes('(memory of the service)'));
  t.true(live.stdout.includes(`slices       0-${SLICES - 1}`), 'the node holds every slice it served');
  const noToken = await runCli(['stat', '--url', node.url, '--', a], { ...env, ADMIN_TOKEN: '' });
  t.is(noToken.exitCode, 2);
  t.regex(noToken.stderr, /ADMIN_TOKEN/);

  const removed = await runCli(['rm', '--', a], env);
  t.is(removed.exitCode, 0, removed.stderr);
  t.regex(removed.stdout, new RegExp(`deleted ${a}/${format} \\(\\d+ objects`));
  t.deepEqual(lines((await runCli(['ls', '--json'], env)).stdout).map((line) => (JSON.parse(line) as VideoInfo).id), [b]);
  const twice = await runCli(['rm', '--', a, b], env);
  t.is(twice.exitCode, 1, 'an id that is not cached is a partial failure');
  t.true(twice.stdout.includes(`${a} is not cached`));
  t.true(twice.stdout.includes(`deleted ${b}/`));
  const gone = await runCli(['stat', '--', a], env);
  t.is(gone.exitCode, 1);
  t.true(gone.stdout.includes(`${a} is not cached`));
  const dashed = await runCli(['stat', '--', '-abcdefghij'], env);
  t.is(dashed.exitCode, 1, 'after --, an id may start with "-"');
  t.true(dashed.stdout.includes('-abcdefghij is not cached'));
});

test('prune prints a readable summary, and with --json one JSON object', async (t) => {
  const bucket = await h.store.fresh();
  const env = { ...h.env, ...bucket };
  const node = await h.node({}, bucket);
  const id = h.video();
  await serve(node, id);

  const keep = await runCli(['prune', '--ttl', '1h'], env);
  t.is(keep.exitCode, 0, keep.stderr);
  t.regex(keep.stdout, /^prune: ttl 60m/m);
  t.regex(keep.stdout, /^scanned\s+1\s+\d+/m);
  t.regex(keep.stdout, /^deleted\s+0\s+0\s+0 B/m);
  t.regex(keep.stdout, /^kept\s+1\s+/m);

  const dry = await runCli(['prune', '--ttl', '0s', '--dry-run'], env);
  t.regex(dry.stdout, new RegExp(`^would delete ${id}/\\S+  ttl  last access `, 'm'));
  const summary = jsonLine<PruneSummary>((await runCli(['prune', '--ttl', '0s', '--json'], env)).stdout);
  t.is(summary.deleted.videos, 1);
  t.is(summary.kept.objects, 0);
  t.false(summary.dryRun);
  t.is(typeof summary.ms, 'number');
});

test('prune draws a progress bar on a terminal, and none when piped', async (t) => {
  const bucket = await h.store.fresh();
  const env = { ...h.env, ...bucket };
  const node = await h.node({}, bucket);
  await serve(node, h.video());
  const terminal = await runCliInTerminal(['prune', '--ttl', '1h'], env);
  if (!terminal) {
    t.log('skipped the terminal half: util-linux `script` (which allocates a pseudo-terminal) is not installed');
  } else {
    t.is(terminal.exitCode, 0, terminal.stdout);
    t.regex(terminal.stdout, /\r\x1b\[2K(\[[#.]+\] \d+% )?(listing objects|reading access times)/, 'a bar, redrawn in place');
    t.regex(terminal.stdout, /^kept\s+1\s+/m);
  }
  const piped = await runCli(['prune', '--ttl', '1h'], env);
  t.is(piped.exitCode, 0);
  t.false(/[\r\x1b]/.test(piped.stdout + piped.stderr), 'no control characters in a log');
});

test('prefetch asks a running service to warm the head', async (t) => {
  const bucket = await h.store.fresh();
  const node = await h.node({}, bucket);
  const id = h.video(fixture, { reportDuration: 30 });
  const started = await runCli(['prefetch', '--url', node.url, '--', id], { ...h.env, ...bucket });
  t.is(started.exitCode, 0, started.stderr);
  t.is(started.stdout.trim(), `${id}: prefetch started`);
  await eventually(async () => ((await node.service.store.getManifest(node.service.cache.video(id as never), 256 * 1024))?.persisted.length ?? 0) > 0, 10_000, 'the head in S3');

  const down = await runCli(['prefetch', '--url', 'http://127.0.0.1:1', '--', id], h.env);
  t.is(down.exitCode, 1);
  t.regex(down.stdout, /did not answer/);
});

test('formats: ls and stat show each format of a video under its name; prefetch --format warms one', async (t) => {
  const bucket = await h.store.fresh();
  const env = { ...h.env, ...bucket };
  const node = await h.node({}, bucket);
  const audio = readFileSync(new URL('../fixtures/audio.m4a', import.meta.url));
  const id = h.video(fixture, { reportDuration: 30, formats: { '140/bestaudio[ext=m4a]/bestaudio': { bytes: audio, contentType: 'audio/mp4', formatId: '140', ext: 'm4a' } } });
  await serve(node, id);
  const started = await runCli(['prefetch', '--url', node.url, '--format', 'audio', '--', id], env);
  t.is(started.exitCode, 0, started.stderr);
  t.is(started.stdout.trim(), `${id} (audio): prefetch started`);
  await eventually(async () => ((await node.service.store.getManifest(node.service.cache.video(id as never, 'audio' as never), 256 * 1024))?.persisted.length ?? 0) > 0, 10_000, 'the audio head in the store');

  const ls = await runCli(['ls', '--json'], env);
  t.is(ls.exitCode, 0, ls.stderr);
  const videos = lines(ls.stdout).map((line) => JSON.parse(line) as VideoInfo);
  t.deepEqual(videos.map((video) => `${video.id}/${video.format}/${video.size}`).sort(), [`${id}/audio/${audio.length}`, `${id}/video/${fixture.length}`]);
  const table = await runCli(['ls'], env);
  t.regex(table.stdout, new RegExp(`${id.replace(/[-]/g, '\\-')}\\s+audio\\s`));
  t.regex(table.stdout, new RegExp(`${id.replace(/[-]/g, '\\-')}\\s+video\\s`));

  const stat = await runCli(['stat', '--json', '--', id], env);
  t.is(stat.exitCode, 0, stat.stderr);
  const { s3 } = JSON.parse(stat.stdout) as { s3: VideoDetail[] };
  t.deepEqual(s3.map((detail) => [detail.format, detail.manifestBody?.selector]), [['audio', '140/bestaudio[ext=m4a]/bestaudio'], ['video', '18/b']]);
  const text = await runCli(['stat', '--', id], env);
  t.true(text.stdout.includes(`${id}/audio`) && text.stdout.includes(`${id}/video`), text.stdout);

  const unknown = await runCli(['prefetch', '--url', node.url, '--format', 'flac', '--', id], env);
  t.is(unknown.exitCode, 1);
  t.regex(unknown.stdout, /unknown format.*known formats: video, audio/);
});

test('bad flag values, ids and configuration exit 2 and name what is wrong', async (t) => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [['prune', '--ttl', 'forever'], {}, /--ttl/],
    [['prune', '--max-bytes', 'lots'], {}, /--max-bytes/],
    [['prune', '--concurrency', '0'], {}, /--concurrency/],
    [['ls', '--sort', 'name'], {}, /--sort/],
    [['ls', '--limit', '0'], {}, /--limit/],
    [['rm', 'not-an-id'], {}, /video id must match/],
    [['stat'], {}, /missing required argument 'id'/],
    [['frobnicate'], {}, /unknown command/],
    [['ls'], { S3_FIRST_BYTE_TIMEOUT: 'x' }, /invalid configuration: S3_FIRST_BYTE_TIMEOUT/],
    [['prune'], { PRUNE_TTL: 'forever' }, /invalid configuration: PRUNE_TTL/],
    [['rm', 'abcdefghijk'], { SLICE_BYTES: '1KiB' }, /invalid configuration: SLICE_BYTES/],
  ];
  for (const [args, env, message] of cases) {
    const result = await runCli(args, { ...h.env, ...env });
    t.is(result.exitCode, 2, `${args.join(' ')} ${JSON.stringify(env)}: ${result.stderr}`);
    t.regex(result.stderr, message, args.join(' '));
  }
  const help = await runCli(['prune', '--help'], h.env);
  t.is(help.exitCode, 0);
  t.regex(help.stdout, /exactly one place per bucket/);
});

test('doctor checks the store permissions and yt-dlp, says how to fix what is wrong, and exits nonzero', async (t) => {
  const healthy = await runCli(['doctor', '--json'], h.env);
  t.is(healthy.exitCode, 0, healthy.stdout + healthy.stderr);
  const report = jsonLine<{ ok: boolean; checks: Check[] }>(healthy.stdout);
  t.true(report.ok);
  t.is(report.checks.find((check) => check.name === 'disk store permissions')?.status, 'ok');
  t.regex(report.checks.find((check) => check.name === 'yt-dlp')?.detail ?? '', /2023\.03\.04-fake/);
  let probes = 0;
  const node = await h.node();
  for await (const page of node.service.store.list('tubecache-doctor/')) probes += page.length;
  t.is(probes, 0, 'the probe object is deleted');

  const noYtdlp = await runCli(['doctor'], { ...h.env, YTDLP_PATH: '/nonexistent/yt-dlp' });
  t.is(noYtdlp.exitCode, 1);
  t.regex(noYtdlp.stdout, /✗ yt-dlp .*\/nonexistent\/yt-dlp/);
  t.regex(noYtdlp.stdout, /fix: install yt-dlp/);

  const noS3 = await runCli(['doctor'], { ...h.env, S3_ENDPOINT: 'http://127.0.0.1:1', S3_ACCESS_KEY_ID: 'key', S3_SECRET_ACCESS_KEY: 'secret' });
  t.is(noS3.exitCode, 1);
  t.regex(noS3.stdout, /✗ S3 reachable +cannot reach http:\/\/127\.0\.0\.1:1/);
  t.regex(noS3.stdout, /fix: check S3_ENDPOINT/);

  const badConfig = await runCli(['doctor'], { ...h.env, PORT: 'eighty' });
  t.is(badConfig.exitCode, 2);
  t.regex(badConfig.stdout, /✗ configuration +PORT: expected a whole number/);
  t.regex(badConfig.stdout, /fix: set PORT to a valid value/);
});

test('with S3_ENDPOINT empty the CLI opens the disk store on DATA_DIR, as the service does', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'tubecache-cli-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const env = { ...h.env, S3_ENDPOINT: '', DATA_DIR: dataDir, S3_BUCKET: 'tubecache' };
  const node = await h.node(env);
  const id = h.video();
  await serve(node, id);
  await node.close();

  const ls = await runCli(['ls', '--json'], env);
  t.is(ls.exitCode, 0, ls.stderr);
  t.deepEqual(lines(ls.stdout).map((line) => (JSON.parse(line) as VideoInfo).id), [id]);
  const pruned = jsonLine<PruneSummary>((await runCli(['prune', '--ttl', '0s', '--json'], env)).stdout);
  t.is(pruned.deleted.videos, 1);
  t.deepEqual(lines((await runCli(['ls', '--json'], env)).stdout), []);
});
