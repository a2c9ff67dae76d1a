import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { probeConditionalWrites } from '../cache/lease.js';
import { openStore } from '../cache/open-store.js';
import { isNotFound } from '../cache/s3-store.js';
import type { StoreTier } from '../cache/store-tier.js';
import type { Config } from '../config.js';
import type { Metrics } from '../metrics.js';
import { ytdlpVersion } from '../origin/resolver.js';
import { describeFormats } from '../origin/format.js';

export interface Check {
  name: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  /** What to do about a warn or fail. */
  fix?: string;
}

/** yt-dlp versions are dates; YouTube changes often enough that an old one stops resolving. */
const YTDLP_STALE_DAYS = 120;

/**
 * Checks what `tubecache serve` needs, in the order an operator would fix it:
 * the settings, the store (reachable, then put/get/list/delete of a probe
 * object outside the videos/ prefix), and yt-dlp.
 */
export async function runDoctor(config: Config, options: { metrics: Metrics }): Promise<Check[]> {
  const checks: Check[] = [settingsCheck(config)];
  if (config.ADMIN_TOKEN && config.ADMIN_TOKEN.length < 16) {
    checks.push({ name: 'admin token', status: 'warn', detail: `ADMIN_TOKEN is ${config.ADMIN_TOKEN.length} characters`, fix: 'use a long random token, e.g. ADMIN_TOKEN=$(openssl rand -hex 32)' });
  }
  if (config.PRUNE_INTERVAL) {
    checks.push({ name: 'scheduled prune', status: 'ok', detail: 'PRUNE_INTERVAL is set: make sure no other node and no cron job prunes the same bucket' });
  }
  if (config.ORIGIN_ALLOWED_HOSTS.length === 0) {
    checks.push({ name: 'origin hosts', status: 'fail', detail: 'ORIGIN_ALLOWED_HOSTS is empty: every video would be refused', fix: 'unset ORIGIN_ALLOWED_HOSTS (default *.googlevideo.com,*.youtube.com)' });
  }

  let store: StoreTier | undefined;
  try {
    store = await openStore(config, options.metrics);
  } catch (error) {
    checks.push({ name: 'disk store', status: 'fail', detail: `cannot open DATA_DIR=${config.DATA_DIR}: ${(error as Error).message}`, fix: 'make DATA_DIR a writable directory, or set S3_ENDPOINT' });
  }
  if (store) {
    try {
      checks.push(...(await storeChecks(config, store)));
    } finally {
      await store.store.close();
    }
  }
  checks.push(await ytdlpCheck(config));
  return checks;
}

function settingsCheck(config: Config): Check {
  const where = config.S3_ENDPOINT ? `S3 ${config.S3_ENDPOINT}, bucket "${config.S3_BUCKET}"` : `disk store on DATA_DIR=${config.DATA_DIR}`;
  const detail = `${where}${config.S3_PREFIX ? `, prefix "${config.S3_PREFIX}"` : ''}, formats ${describeFormats(config.FORMATS)}`;
  if (config.S3_ENDPOINT) return { name: 'configuration', status: 'ok', detail };
  return {
    name: 'configuration',
    status: 'warn',
    detail,
    fix: 'the disk store is for one node; set S3_ENDPOINT (and S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY) so that nodes share a bucket',
  };
}

/** What a store failure most likely means, from the SDK or file-system error behind our STORE_ERROR. */
function explainS3(config: Config, error: unknown): { detail: string; fix: string } {
  const cause = ((error as { cause?: unknown }).cause ?? error) as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = cause.$metadata?.httpStatusCode;
  const name = cause.name ?? '';
  const message = cause.message || name || String(error);
  const endpoint = config.S3_ENDPOINT || `DATA_DIR=${config.DATA_DIR}`;
  if (/CredentialsProviderError/.test(name) || /credentials/i.test(message)) {
    return { detail: message, fix: 'set S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY (or give the AWS SDK credentials: AWS_PROFILE, an instance role…)' };
  }
  if (status === 403 || /AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|Forbidden/.test(name)) {
    return { detail: `S3 refused the credentials (${name || status})`, fix: 'check S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, and that the bucket policy allows this key' };
  }
  if (status === 301 || /PermanentRedirect|AuthorizationHeaderMalformed|IllegalLocationConstraint/.test(name)) {
    return { detail: `the bucket is in another region (${name || status})`, fix: "set S3_REGION to the bucket's region" };
  }
  if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET|EHOSTUNREACH|Timeout/i.test(`${cause.code ?? ''} ${name} ${message}`)) {
    return { detail: `cannot reach ${endpoint}: ${message}`, fix: `check S3_ENDPOINT (host, port, http/https) and the network; a request is given S3_CONNECT_TIMEOUT=${config.S3_CONNECT_TIMEOUT}ms to connect and S3_FIRST_BYTE_TIMEOUT=${config.S3_FIRST_BYTE_TIMEOUT}ms to answer` };
  }
  return { detail: message, fix: 'check the S3_* settings against your S3 provider' };
}

async function storeChecks(config: Config, store: StoreTier): Promise<Check[]> {
  const label = store.name === 's3' ? 'S3' : 'disk store';
  try {
    await store.ping();
  } catch (error) {
    if (isNotFound((error as { cause?: unknown }).cause)) {
      return [
        config.S3_CREATE_BUCKET
          ? { name: 'S3 bucket', status: 'warn', detail: `bucket "${config.S3_BUCKET}" does not exist yet; tubecache serve creates it (S3_CREATE_BUCKET=true)`, fix: 'start the service once, or create the bucket yourself' }
          : { name: 'S3 bucket', status: 'fail', detail: `bucket "${config.S3_BUCKET}" does not exist`, fix: 'create it, or set S3_BUCKET to an existing bucket, or S3_CREATE_BUCKET=true' },
      ];
    }
    return [{ name: `${label} reachable`, status: 'fail', ...explainS3(config, error) }];
  }
  const checks: Check[] = [{ name: `${label} reachable`, status: 'ok', detail: `${store.store.location} answers` }];

  // Outside videos/, so a prune running meanwhile never sees it.
  const key = `${config.S3_PREFIX}tubecache-doctor/${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
  const body = `tubecache doctor ${new Date().toISOString()}`;
  const grant = (action: string) => (store.name === 's3' ? `grant ${action} on arn:aws:s3:::${config.S3_BUCKET}/${config.S3_PREFIX}* to this key` : `make ${store.store.location} readable and writable by this user`);
  const steps: [string, string, () => Promise<string | undefined>][] = [
    ['put', 's3:PutObject', async () => void (await store.putText(key, body, 'text/plain'))],
    ['get', 's3:GetObject', async () => ((await store.getText(key)) === body ? undefined : 'read back different bytes')],
    [
      'list',
      's3:ListBucket',
      async () => {
        for await (const page of store.list(key)) if (page.some((object) => object.key === key)) return undefined;
        return 'the probe object is not listed';
      },
    ],
    ['delete', 's3:DeleteObject', async () => (await store.deleteKeys([key]))[0]?.message],
  ];
  const failed: string[] = [];
  for (const [step, action, run] of steps) {
    const problem = await run().catch((error: unknown) => explainS3(config, error).detail);
    if (problem !== undefined) {
      checks.push({ name: `${label} ${step}`, status: 'fail', detail: problem, fix: grant(action) });
      failed.push(step);
      if (step === 'put') break;
    }
  }
  if (failed.length === 0) checks.push({ name: `${label} permissions`, status: 'ok', detail: `put, get, list and delete of ${key}` });
  if (store.name === 's3' && !failed.includes('put')) checks.push(await sharingCheck(config, store));
  return checks;
}

/** Whether nodes on this bucket can share origin fetches: the probe `tubecache serve` runs at start-up (src/cache/lease.ts). */
async function sharingCheck(config: Config, store: StoreTier): Promise<Check> {
  const name = 'S3 conditional writes';
  try {
    if (await probeConditionalWrites(store)) return { name, status: 'ok', detail: 'If-None-Match and If-Match are honoured: nodes on this bucket fetch each slice from the origin once between them (leases)' };
    return {
      name,
      status: 'warn',
      detail: 'the server ignores or refuses If-None-Match: * on PutObject, so each node fetches from the origin on its own',
      fix: 'for several nodes on one bucket, use an S3 server with conditional writes (AWS S3, Ceph RGW, a recent MinIO)',
    };
  } catch (error) {
    return { name, status: 'fail', ...explainS3(config, error) };
  }
}

async function ytdlpCheck(config: Config): Promise<Check> {
  let version: string;
  try {
    version = await ytdlpVersion(config);
  } catch (error) {
    return {
      name: 'yt-dlp',
      status: 'fail',
      detail: `${config.YTDLP_PATH}: ${(error as Error).message}`,
      fix: 'install yt-dlp (apt-get install yt-dlp, or pipx install yt-dlp for a newer one) or set YTDLP_PATH to its executable',
    };
  }
  const date = /^(\d{4})\.(\d{2})\.(\d{2})/.exec(version);
  const age = date ? (Date.now() - Date.UTC(Number(date[1]), Number(date[2]) - 1, Number(date[3]))) / 86_400_000 : 0;
  if (age > YTDLP_STALE_DAYS) {
    return { name: 'yt-dlp', status: 'warn', detail: `${config.YTDLP_PATH} ${version} is ${Math.round(age)} days old`, fix: 'update yt-dlp (yt-dlp -U, pipx upgrade yt-dlp, or your package manager): YouTube breaks old versions' };
  }
  return { name: 'yt-dlp', status: 'ok', detail: `${config.YTDLP_PATH} ${version}` };
}
