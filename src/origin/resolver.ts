import { execa } from 'execa';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { TubeError, isTubeError, type ErrorCode } from '../errors.js';
import { Limiter } from '../limiter.js';
import type { Metrics } from '../metrics.js';
import type { Resolvable } from './format.js';
import { ResolutionCache, resolvableKey, type Resolution } from './resolution-cache.js';

export type { Resolution };

/** stderr patterns, most specific first. YouTube's wording as yt-dlp reports it. */
const CLASSIFIERS: { code: ErrorCode; pattern: RegExp }[] = [
  { code: 'YTDLP_RESTRICTED', pattern: /confirm you.?re not a bot|sign in to confirm|age[- ]restricted|confirm your age|inappropriate|members[- ]only|login required|cookies|HTTP Error 429|too many requests/i },
  { code: 'VIDEO_UNAVAILABLE', pattern: /unavailable|private video|video is private|removed|terminated|does not exist|not available|no video formats|HTTP Error 404|unsupported url|is not a valid url/i },
];

/**
 * Resolves a video id to a media URL by running yt-dlp. Results are cached
 * (ResolutionCache) until the URL expires; concurrent callers share one run; at
 * most YTDLP_CONCURRENCY runs at once, with a bounded queue behind them.
 */
export class Resolver {
  readonly #config: Config;
  readonly #answers: ResolutionCache;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #limiter: Limiter;
  readonly #running = new Map<string, Promise<Resolution>>();

  constructor(options: { config: Config; metrics: Metrics; logger: Logger }) {
    this.#config = options.config;
    this.#answers = new ResolutionCache();
    this.#metrics = options.metrics;
    this.#log = options.logger;
    this.#limiter = new Limiter(this.#config.YTDLP_CONCURRENCY, this.#config.YTDLP_QUEUE);
  }

  get running(): number {
    return this.#limiter.active;
  }

  /** The media URL of the video in the given selector. */
  resolve(video: Resolvable): Promise<Resolution> {
    const answer = this.#answers.get(video);
    if (answer?.refusal) return Promise.reject(new TubeError(answer.refusal.code, answer.refusal.detail));
    if (answer?.resolution && answer.resolution.expiresAt > Date.now()) {
      this.#metrics.resolveCache.inc({ result: 'hit' });
      return Promise.resolve(answer.resolution);
    }
    const key = resolvableKey(video);
    const running = this.#running.get(key);
    if (running) {
      this.#metrics.resolveCache.inc({ result: 'joined' });
      return running;
    }
    this.#metrics.resolveCache.inc({ result: 'miss' });
    const queued = this.#limiter.tryRun(() => this.#run(video));
    if (!queued) return Promise.reject(new TubeError('RESOLVE_QUEUE_FULL'));
    const run = queued.finally(() => this.#running.delete(key));
    this.#running.set(key, run);
    return run;
  }

  /** Whether a media URL for the video is at hand or on its way: fetching it would not start yt-dlp. */
  has(video: Resolvable): boolean {
    const resolution = this.#answers.get(video)?.resolution;
    return (resolution !== undefined && resolution.expiresAt > Date.now()) || this.#running.has(resolvableKey(video));
  }

  /** Forgets a resolution the origin refused (403/410), so the next call runs yt-dlp again. */
  invalidate(video: Resolvable): void {
    this.#answers.delete(video);
  }

  async #run(video: Resolvable): Promise<Resolution> {
    const started = performance.now();
    let outcome = 'ok';
    try {
      const resolution = await this.#spawn(video);
      const ttl = resolution.expiresAt - Date.now();
      if (ttl > 0) this.#answers.setResolution(video, resolution, ttl);
      return resolution;
    } catch (error) {
      outcome = isTubeError(error) ? error.code.toLowerCase() : 'error';
      if (isTubeError(error, 'VIDEO_UNAVAILABLE')) {
        this.#answers.setRefusal(video, { code: error.code, detail: error.message.replace(/^[^:]*: /, '') }, this.#config.NEGATIVE_TTL);
      }
      this.#log.warn({ videoId: video.id, selector: video.selector, err: error }, 'yt-dlp resolution failed');
      throw error;
    } finally {
      this.#metrics.ytdlpRuns.inc({ outcome });
      this.#metrics.ytdlpSeconds.observe({ outcome }, (performance.now() - started) / 1000);
    }
  }

  async #spawn(video: Resolvable): Promise<Resolution> {
    const config = this.#config;
    const pageUrl = config.YTDLP_URL_TEMPLATE.replaceAll('{id}', video.id);
    // Operator arguments first; the URL always after `--`, so nothing can be read as an option.
    const args = ['-J', '--no-playlist', '--no-warnings', '-f', video.selector, ...config.YTDLP_EXTRA_ARGS, '--', pageUrl];
    const subprocess = execa(config.YTDLP_PATH, args, {
      reject: false,
      stdin: 'ignore',
      // Its own process group, so a timeout kills yt-dlp and everything it started.
      detached: true,
      cleanup: true,
      maxBuffer: 64 * 2 ** 20,
      env: { PYTHONUNBUFFERED: '1' },
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (subprocess.pid) killGroup(subprocess.pid);
    }, config.RESOLVE_TIMEOUT);
    const result = await subprocess.finally(() => clearTimeout(timer));
    // yt-dlp may have left children in its group even when it exited by itself.
    if (subprocess.pid) killGroup(subprocess.pid);

    if (timedOut) throw new TubeError('YTDLP_TIMEOUT', `killed after ${config.RESOLVE_TIMEOUT} ms`);
    if (result.code === 'ENOENT' || result.code === 'EACCES') {
      throw new TubeError('YTDLP_MISSING', `${config.YTDLP_PATH} (${result.code})`);
    }
    // -J prints "null" on failure: the exit code decides, not the output.
    if (result.exitCode !== 0) throw classify(String(result.stderr ?? ''), result.exitCode);
    return this.#parse(String(result.stdout));
  }

  #parse(stdout: string): Resolution {
    let info: Record<string, unknown>;
    try {
      info = JSON.parse(stdout) as Record<string, unknown>;
    } catch {
      throw new TubeError('YTDLP_FAILED', 'output is not JSON');
    }
    // With a format selector, -J puts the chosen format's fields at the top level.
    const url = info?.url;
    if (typeof url !== 'string') throw new TubeError('YTDLP_FAILED', 'no media url in the output (is the format a single file?)');
    const headers: Record<string, string> = {};
    if (info.http_headers && typeof info.http_headers === 'object') {
      for (const [name, value] of Object.entries(info.http_headers)) if (typeof value === 'string') headers[name] = value;
    }
    const positive = (value: unknown) => (typeof value === 'number' && value > 0 ? value : undefined);
    return {
      url,
      headers,
      filesize: positive(info.filesize),
      duration: positive(info.duration),
      expiresAt: this.#expiry(url),
    };
  }

  #expiry(url: string): number {
    const expire = Number(new URL(url).searchParams.get('expire'));
    return Number.isFinite(expire) && expire > 0 ? expire * 1000 - this.#config.RESOLVE_MARGIN : Date.now() + this.#config.RESOLVE_TTL;
  }

  /** `yt-dlp --version`, for readiness and doctor. */
  version(): Promise<string> {
    return ytdlpVersion(this.#config);
  }
}

/** `yt-dlp --version`: whether YTDLP_PATH runs at all (readiness, doctor). */
export async function ytdlpVersion(config: Pick<Config, 'YTDLP_PATH' | 'RESOLVE_TIMEOUT'>): Promise<string> {
  const result = await execa(config.YTDLP_PATH, ['--version'], { reject: false, timeout: config.RESOLVE_TIMEOUT, stdin: 'ignore' });
  if (result.code === 'ENOENT' || result.code === 'EACCES') throw new TubeError('YTDLP_MISSING', `${config.YTDLP_PATH} (${result.code})`);
  if (result.exitCode !== 0) throw new TubeError('YTDLP_FAILED', `--version exited ${result.exitCode}`);
  return String(result.stdout).trim();
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** Turns yt-dlp's stderr into a typed error carrying its own reason. */
export function classify(stderr: string, exitCode?: number): TubeError {
  const lines = stderr.split('\n').map((line) => line.trim()).filter(Boolean);
  const reason = (lines.findLast((line) => line.startsWith('ERROR:')) ?? lines.at(-1) ?? `exit code ${exitCode}`).slice(0, 300);
  const match = CLASSIFIERS.find((classifier) => classifier.pattern.test(reason));
  if (!match) return new TubeError('YTDLP_FAILED', reason);
  return new TubeError(match.code, reason);
}
