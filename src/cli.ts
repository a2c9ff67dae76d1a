import { readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { openStore } from './cache/open-store.js';
import type { StoreTier } from './cache/store-tier.js';
import { loadConfig, type Config } from './config.js';
import { TubecacheClient, TubecacheClientError, type VideoStat } from './client.js';
import { ConfigError, isTubeError } from './errors.js';
import { createMetrics, type Metrics } from './metrics.js';
import { removeVideos } from './ops/delete.js';
import { runDoctor } from './ops/doctor.js';
import { listAllVideos, statVideo, VIDEO_SORTS, type VideoDetail, type VideoSort } from './ops/inspect.js';
import { progressBar } from './ops/progress.js';
import { DEFAULT_CONCURRENCY } from './ops/scan.js';
import { defaultPruneOptions, ORPHAN_GRACE_MS, prune } from './ops/prune.js';
import { checksReport, pruneReport, videoReport, videoTable, type MemoryView } from './ops/report.js';
import { describeFormats } from './origin/format.js';
import { parseVideoId, type VideoId } from './origin/video-id.js';
import { Service } from './service.js';
import { formatBytes, formatDuration, parseDuration, parseSize } from './units.js';

/** Exit codes shared by every command: 0 done, 1 partial failure, 2 bad usage or configuration. */
const EXIT = { ok: 0, partial: 1, usage: 2 } as const;

/** A failure the message explains (a service that does not answer): printed without a stack, exit 1. */
class CommandFailed extends Error {}


/** The store as the service sees it (the S3 bucket, or the disk store on DATA_DIR when S3_ENDPOINT is empty), for the length of `run`. */
async function withStore<T>(config: Config, run: (store: StoreTier, metrics: Metrics) => Promise<T>): Promise<T> {
  const metrics = createMetrics();
  const tier = await openStore(config, metrics);
  try {
    return await run(tier, metrics);
  } finally {
    await tier.store.close();
  }
}

const print = (text: string) => process.stdout.write(`${text}\n`);

// Flag values are checked as commander parses them, so a bad one is a usage error (exit 2) naming the flag.
const invalid = (message: string): never => {
  throw new InvalidArgumentError(message);
};
const durationFlag = (raw: string) => parseDuration(raw) ?? invalid('expected a duration such as 90s, 10m, 12h or 7d');
const sizeFlag = (raw: string) => parseSize(raw) ?? invalid('expected a size such as 500MiB, 5GiB or 1073741824');
const countFlag = (min: number, max: number) => (raw: string) => {
  const value = Number(raw);
  return /^\d+$/.test(raw) && value >= min && value <= max ? value : invalid(`expected a whole number from ${min} to ${max}`);
};
const idArgument = () =>
  new Argument('<id...>', 'video ids (put -- before an id that starts with "-")').argParser((raw: string, previous: VideoId[] = []) => {
    try {
      return [...previous, parseVideoId(raw)];
    } catch (error) {
      return invalid((error as Error).message);
    }
  });
const concurrencyOption = () => new Option('--concurrency <n>', 'store requests at once').argParser(countFlag(1, 64)).default(DEFAULT_CONCURRENCY);

async function serve(): Promise<void> {
  const service = await Service.create(loadConfig());
  const { url, adminUrl } = await service.listen();
  service.logger.info({ url, adminUrl, store: service.store.store.location, formats: describeFormats(service.config.FORMATS) }, 'tubecache listening');
  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) {
      // An operator who asks twice wants out now: 128 + the signal's number, as a shell reports it.
      service.logger.warn({ signal }, 'second signal: exiting without waiting');
      process.exit(128 + osConstants.signals[signal]);
    }
    stopping = true;
    const started = Date.now();
    service.logger.info({ signal, graceMs: service.config.SHUTDOWN_GRACE }, 'shutting down: draining in-flight responses');
    await service.close(service.config.SHUTDOWN_GRACE);
    service.logger.info({ ms: Date.now() - started }, 'shut down');
    process.exit(EXIT.ok);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

interface PruneFlags {
  ttl?: number;
  maxBytes?: number;
  orphanGrace: number;
  dryRun?: boolean;
  json?: boolean;
  concurrency: number;
}

async function pruneCommand(flags: PruneFlags): Promise<void> {
  const cfg = loadConfig();
  const defaults = defaultPruneOptions(cfg);
  const options = {
    ttlMs: flags.ttl ?? defaults.ttlMs,
    maxBytes: flags.maxBytes ?? defaults.maxBytes,
    dryRun: flags.dryRun ?? false,
    concurrency: flags.concurrency,
    orphanGraceMs: flags.orphanGrace,
  };
  const progress = progressBar(process.stderr);
  const labels = { scan: 'listing objects', delete: 'deleting objects' } as const;
  const summary = await withStore(cfg, (store, metrics) =>
    prune(store, options, { metrics, onProgress: (phase, done, total) => progress.update(labels[phase], done, total) }).finally(() => progress.end()),
  );
  if (flags.json) {
    // A cron log line: the deleted videos are listed only when nothing was deleted (--dry-run).
    const { videos: _videos, ...counts } = summary;
    print(JSON.stringify(summary.dryRun ? summary : counts));
  } else {
    print(pruneReport(summary));
  }
  process.exitCode = summary.failures.length ? EXIT.partial : EXIT.ok;
}

async function lsCommand(flags: { json?: boolean; sort: VideoSort; limit?: number; concurrency: number }): Promise<void> {
  const cfg = loadConfig();
  const videos = await withStore(cfg, (store) => listAllVideos(store, { sort: flags.sort, limit: flags.limit, concurrency: flags.concurrency }));
  if (flags.json) for (const video of videos) print(JSON.stringify(video));
  else print(videoTable(videos));
}

/** A running node, through the same client other services use. */
const serviceClient = (url: string, adminToken?: string) => new TubecacheClient({ baseUrl: url, ...(adminToken ? { adminToken } : {}), logger: { warn() {} } });

/** A client error as one line: the node not answering, or what it answered. */
const describeFailure = (url: string, error: unknown): string =>
  error instanceof TubecacheClientError && (error.code === 'UNREACHABLE' || error.code === 'TIMEOUT') ? `${url} did not answer: ${error.message}` : (error as Error).message;

/** The admin API's view of a video (S3 plus the node's memory); undefined when the node does not have it. */
async function statFromService(url: string, id: VideoId, token: string): Promise<VideoStat | undefined> {
  if (!token) throw new ConfigError('ADMIN_TOKEN', 'stat --url needs the admin token: set ADMIN_TOKEN or pass --token');
  try {
    return await serviceClient(url, token).stat(id);
  } catch (error) {
    if (error instanceof TubecacheClientError && error.status === 404) return undefined;
    throw new CommandFailed(describeFailure(url, error));
  }
}

async function statCommand(ids: VideoId[], flags: { url?: string; token?: string; json?: boolean }): Promise<void> {
  const cfg = loadConfig();
  let missing = 0;
  const report = (id: VideoId, s3: VideoDetail[], memory?: MemoryView | null) => {
    if (s3.length === 0 && !memory) missing++;
    print(flags.json ? JSON.stringify({ id, s3, ...(memory !== undefined ? { memory } : {}) }) : videoReport(id, s3, memory));
  };
  if (flags.url) {
    for (const id of ids) {
      const answer = await statFromService(flags.url, id, flags.token ?? cfg.ADMIN_TOKEN);
      report(id, answer?.s3 ?? [], answer?.memory ?? null);
    }
  } else {
    await withStore(cfg, async (store) => {
      for (const id of ids) report(id, await statVideo(store, id));
    });
  }
  process.exitCode = missing ? EXIT.partial : EXIT.ok;
}

async function rmCommand(ids: VideoId[], flags: { json?: boolean; concurrency: number }): Promise<void> {
  const cfg = loadConfig();
  const result = await withStore(cfg, (store) => removeVideos(store, ids, { concurrency: flags.concurrency }));
  if (flags.json) {
    print(JSON.stringify({ deleted: result.videos.map(({ id, format }) => ({ id, format })), objects: result.objects, bytes: result.bytes, missing: result.missing, failures: result.failures }));
  } else {
    for (const video of result.videos) print(`deleted ${video.id}/${video.format} (${video.count} objects, ${formatBytes(video.bytes)})`);
    for (const id of result.missing) print(`${id} is not cached`);
    for (const failure of result.failures) print(`could not delete ${failure.key}: ${failure.message}`);
  }
  process.exitCode = result.missing.length || result.failures.length ? EXIT.partial : EXIT.ok;
}

async function prefetchCommand(ids: VideoId[], flags: { url?: string; format?: string }): Promise<void> {
  const url = flags.url ?? `http://127.0.0.1:${loadConfig().PORT}`;
  const client = serviceClient(url);
  let failed = 0;
  for (const id of ids) {
    const result = await client.prefetch(id, { format: flags.format });
    if (!result.ok) failed++;
    const name = flags.format ? `${id} (${flags.format})` : id;
    print(result.ok ? `${name}: prefetch started` : `${name}: ${describeFailure(url, result.error)}`);
  }
  process.exitCode = failed ? EXIT.partial : EXIT.ok;
}

async function doctorCommand(flags: { json?: boolean }): Promise<void> {
  let cfg: Config;
  try {
    cfg = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const check = { name: 'configuration', status: 'fail' as const, detail: error.message, fix: `set ${error.variable} to a valid value, or unset it for the default` };
    print(flags.json ? JSON.stringify({ ok: false, checks: [check] }) : checksReport([check]));
    process.exitCode = EXIT.usage;
    return;
  }
  const checks = await runDoctor(cfg, { metrics: createMetrics() });
  const ok = checks.every((check) => check.status !== 'fail');
  print(flags.json ? JSON.stringify({ ok, checks }) : checksReport(checks));
  process.exitCode = ok ? EXIT.ok : EXIT.partial;
}

const program = new Command('tubecache')
  .description('A tiered cache (memory → disk or S3 → yt-dlp/origin) for YouTube video bytes.\nEvery command reads the service\'s environment variables (S3_*, DATA_DIR, PRUNE_*, ADMIN_TOKEN…).')
  // package.json is one level up from both src/ (tsx) and dist/ (compiled).
  .version((JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version, '-V, --version')
  .exitOverride()
  .showHelpAfterError();

program.command('serve').description('run the service (what npm start runs)').action(serve);

program
  .command('prune')
  .description('delete videos not read within the TTL, then the least recently read above --max-bytes, and orphaned objects')
  .option('--ttl <duration>', 'delete videos not read for this long (default: PRUNE_TTL)', durationFlag)
  .option('--max-bytes <size>', 'then keep the bucket under this size, least recently read first (default: PRUNE_MAX_BYTES; 0: no limit)', sizeFlag)
  .addOption(
    new Option('--orphan-grace <duration>', 'delete slices and access objects without a manifest once this old')
      .argParser(durationFlag)
      .default(ORPHAN_GRACE_MS, formatDuration(ORPHAN_GRACE_MS)),
  )
  .option('--dry-run', 'list what would be deleted; delete nothing')
  .option('--json', 'print the summary as one JSON object')
  .addOption(concurrencyOption())
  .addHelpText('after', `\nRun it from exactly one place per bucket (one cron job, or PRUNE_INTERVAL on one node).\nExit codes: 0 done, 1 some objects could not be deleted (listed), 2 bad usage or configuration.`)
  .action(pruneCommand);

program
  .command('ls')
  .description('list cached videos: id, format, size, bytes and slices stored, head seconds, created, last access')
  .option('--json', 'one JSON object per line')
  .addOption(new Option('--sort <key>', 'access: most recently read first; size: largest first; created: newest first').choices(VIDEO_SORTS).default('access'))
  .option('--limit <n>', 'show at most n videos', countFlag(1, Number.MAX_SAFE_INTEGER))
  .addOption(concurrencyOption())
  .action(lsCommand);

program
  .command('stat')
  .description('everything known about a video: manifest, slices stored, times; with --url, also what a running service holds in memory')
  .addArgument(idArgument())
  .option('--url <url>', "ask a running service's admin API (http://host:ADMIN_PORT, or its PORT when ADMIN_PORT=0)")
  .option('--token <token>', 'admin token for --url (default: ADMIN_TOKEN)')
  .option('--json', 'one JSON object per video')
  .action(statCommand);

program
  .command('rm')
  .description('delete videos from the bucket (manifest first, then slices)')
  .addArgument(idArgument())
  .option('--json', 'print the result as one JSON object')
  .addOption(concurrencyOption())
  .action(rmCommand);

program
  .command('prefetch')
  .description("warm the head of videos through a running service's POST /prefetch")
  .addArgument(idArgument())
  .option('--url <url>', 'the service (default: http://127.0.0.1:PORT)')
  .option('--format <name>', "one of the service's FORMATS names (default: its default format)")
  .action(prefetchCommand);

program
  .command('doctor')
  .description('check the configuration, the store (reachable; put, get, list, delete) and yt-dlp, and say how to fix what is wrong')
  .option('--json', 'print the checks as one JSON object')
  .action(doctorCommand);

try {
  await program.parseAsync();
} catch (error) {
  if (error instanceof CommanderError) process.exit(error.exitCode === 0 ? EXIT.ok : EXIT.usage);
  if (error instanceof ConfigError) {
    process.stderr.write(`tubecache: invalid configuration: ${error.message}\n`);
    process.exit(EXIT.usage);
  }
  // Expected failures (the store down, a service not answering) are one line; anything else keeps its stack.
  const expected = isTubeError(error) || error instanceof CommandFailed;
  process.stderr.write(`tubecache: ${expected ? (error as Error).message : ((error as Error).stack ?? error)}\n`);
  process.exit(EXIT.partial);
}
