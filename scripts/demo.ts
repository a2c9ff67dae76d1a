/**
 * `npm run demo`: tubecache offline. A local YouTube-like origin serves the
 * test fixture, the stand-in yt-dlp resolves it, the disk store keeps the
 * head, and the service listens on PORT (default 8080). Prints curl lines that
 * show a MISS, then a HIT.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { loadConfig } from '../src/config.js';
import { Service } from '../src/service.js';
import { FAKE_YTDLP_PATH, FIXTURE_VIDEO_PATH, startOrigin } from '../test/helpers/origin.js';

const VIDEO_ID = 'demo-video1';

const origin = await startOrigin();
origin.addVideo(VIDEO_ID, readFileSync(FIXTURE_VIDEO_PATH), { reportDuration: 30, title: 'tubecache demo' });
const config = loadConfig({
  ...process.env,
  S3_ENDPOINT: '',
  DATA_DIR: process.env.DATA_DIR ?? (await mkdtemp(join(tmpdir(), 'tubecache-demo-'))),
  YTDLP_PATH: FAKE_YTDLP_PATH,
  YTDLP_URL_TEMPLATE: `${origin.url}/watch?v={id}`,
  ORIGIN_ALLOWED_HOSTS: '127.0.0.1',
});
const service = await Service.create(config);
const { url } = await service.listen();

process.stdout.write(`
tubecache demo on ${url} (origin ${origin.url}, disk store under ${config.DATA_DIR})

  curl -s -o /dev/null -D - ${url}/proxy/${VIDEO_ID}                       # X-Cache-Status: MISS
  curl -s -o /dev/null -D - ${url}/proxy/${VIDEO_ID}                       # X-Cache-Status: HIT
  curl -s -o /dev/null -D - -H 'Range: bytes=1000000-1000099' ${url}/proxy/${VIDEO_ID}   # 206
  curl -s -X POST ${url}/prefetch/${VIDEO_ID}
  curl -s ${url}/metrics | grep tubecache_served_bytes
  open ${url}/proxy/${VIDEO_ID} in a browser to play it

Ctrl-C stops it.
`);

const stop = async () => {
  await service.close();
  await origin.close();
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
