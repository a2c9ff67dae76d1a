/**
 * The admin web page in headless Chromium: the login page (401), signing in
 * with the token, the page rendered from live data (the video this test cached,
 * the hit ratio), the preview through /proxy, delete with its confirmation and
 * prune as a dry run then for real — with no console error, no uncaught
 * exception and no Content-Security-Policy violation on the way.
 */
import { mkdir } from 'node:fs/promises';
import test, { type ExecutionContext } from 'ava';
import type { Page } from 'playwright-core';
import { mp4Duration } from '../../src/origin/mp4.js';
import { statVideo } from '../../src/ops/inspect.js';
import type { VideoId } from '../../src/origin/video-id.js';
import { ARTIFACTS, chromiumMissing, launchChromium, type Browser } from '../helpers/browser.js';
import { eventually, fixture, fixtureSha, startHarness, type Harness, type Node } from '../helpers/harness.js';

const TOKEN = 'admin-page-token-0123456789abcdef';
const DURATION = mp4Duration(fixture)!;
/** Generous: the page polls every 3 s and the machine is shared. */
const UI_TIMEOUT = 30_000;

if (chromiumMissing) console.log(`page.test.ts ${chromiumMissing}`);

let h: Harness;
let browser: Browser;

test.before(async () => {
  if (chromiumMissing) return;
  h = await startHarness();
  browser = await launchChromium({ viewport: { width: 1280, height: 800 } });
  await mkdir(ARTIFACTS, { recursive: true });
});

test.after.always(async () => {
  await browser?.close();
  await h?.close();
});

/** A node with the admin API on a store of its own, so the page lists only this test's videos. */
const adminNode = async (): Promise<Node> => h.node({ ADMIN_TOKEN: TOKEN }, await h.store.fresh());

/** Serves a new video through /proxy (bytes checked) and waits for its uploads: it is then in the store. */
async function cacheVideo(node: Node): Promise<string> {
  const id = h.video(fixture, { reportDuration: DURATION });
  const reply = await node.get(`/proxy/${id}`);
  if (reply.sha256 !== fixtureSha) throw new Error(`served wrong bytes for ${id}`);
  await node.service.cache.idle();
  return id;
}

/**
 * Everything that went wrong in the page: console errors, uncaught exceptions
 * and CSP violations. The listener for the latter is installed in every
 * document; signing in rewrites the document, which drops listeners, so
 * `watchViolations` installs it again.
 */
async function openPage(node: Node) {
  const page = await browser.context.newPage();
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    // The browser reports the answers the test asks for (the login page is a 401, a wrong token a 403) as failed loads.
    if (/^Failed to load resource: the server responded with a status of 40[13]/.test(message.text()) && message.location().url.startsWith(`${node.url}/admin/`)) return;
    problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  await page.exposeFunction('reportViolation', (text: string) => problems.push(`csp: ${text}`));
  const watchViolations = () =>
    page.evaluate(`document.addEventListener('securitypolicyviolation', (e) => window.reportViolation(e.violatedDirective + ' ' + e.blockedURI))`);
  await page.addInitScript(`document.addEventListener('securitypolicyviolation', (e) => window.reportViolation(e.violatedDirective + ' ' + e.blockedURI))`);
  return { page, problems, watchViolations };
}

/** Opens /admin/ (the login page, 401), signs in, and waits for the page to list `id` (or to have listed). */
async function signIn(t: ExecutionContext, node: Node, id?: string) {
  const opened = await openPage(node);
  const { page } = opened;
  const response = await page.goto(`${node.url}/admin/`);
  t.is(response?.status(), 401, 'without a token: 401');
  const policy = (await response?.headerValue('content-security-policy')) ?? '';
  t.regex(policy, /default-src 'none'/);
  t.regex(policy, /frame-ancestors 'none'/);
  t.notRegex(policy, /unsafe-inline|unsafe-eval/);
  await page.locator('#token').fill(TOKEN);
  await page.locator('#login button').click();
  await page.locator(id ? `#video-rows tr[data-id="${id}"]` : '#video-count:not(:empty)').waitFor({ timeout: UI_TIMEOUT });
  await opened.watchViolations();
  return opened;
}

/** The preview's duration once its metadata has loaded through /proxy. */
const previewDuration = (page: Page) =>
  page.evaluate(`new Promise((resolve, reject) => {
    const video = document.getElementById('preview-video');
    if (video.readyState >= 1) return resolve(video.duration);
    video.addEventListener('loadedmetadata', () => resolve(video.duration));
    video.addEventListener('error', () => reject(new Error('video error ' + (video.error && video.error.code))));
  })`);

const row = (page: Page, id: string) => page.locator(`#video-rows tr[data-id="${id}"]`);

test.serial('the page: login (401), a wrong token refused, then live figures, the cached video and its preview; a screenshot', async (t) => {
  if (chromiumMissing) return t.log(chromiumMissing);
  const node = await adminNode();
  const id = await cacheVideo(node);
  // A second read from memory: the hit ratio is 50 %.
  t.is((await node.get(`/proxy/${id}`)).sha256, fixtureSha);

  const { page, problems, watchViolations } = await openPage(node);
  const response = await page.goto(`${node.url}/admin/`);
  t.is(response?.status(), 401);
  t.true(await page.locator('#token').isVisible(), 'the login page asks for the token');
  await page.locator('#token').fill('not-the-token');
  await page.locator('#login button').click();
  await page.locator('#login-error', { hasText: 'not the admin token' }).waitFor({ timeout: UI_TIMEOUT });

  await page.locator('#token').fill(TOKEN);
  await page.locator('#login button').click();
  await row(page, id).waitFor({ timeout: UI_TIMEOUT });
  await watchViolations();
  t.is(await page.evaluate(`sessionStorage.getItem('tubecache-admin-token')`), TOKEN, 'the token is kept for the tab');

  await page.locator('#hit-ratio', { hasText: '50.0 %' }).waitFor({ timeout: UI_TIMEOUT });
  t.regex((await page.locator('#requests').textContent()) ?? '', new RegExp(`^2 requests: 1 memory, 0 ${h.store.kind === 's3' ? 'S3' : 'disk'}, 1 origin$`));
  const cells = await row(page, id).locator('td').allTextContents();
  const [stored] = await statVideo(node.service.store, id as VideoId);
  t.is(cells[0], id);
  t.is(cells[1], stored!.format);
  t.is(cells[2], `${(fixture.length / 2 ** 20).toFixed(1)} MiB`);
  t.is(cells[4], `${stored!.persistedSlices}/${stored!.totalSlices}`, 'slices stored of all');
  // HEAD_SECONDS=10 of 30 s: the first 3 of 8 slices, persisted without a gap.
  t.like(stored, { headSlices: 3, persistedSlices: 3 });
  t.deepEqual(stored!.persistedRanges, [[0, 2]]);
  t.is(await row(page, id).locator('.bar .seg').count(), 1, 'one bar segment per persisted run');
  t.is(await row(page, id).locator('.bar .head').count(), 1, 'the head is marked');

  // The preview plays through /proxy: its metadata is the fixture's.
  await row(page, id).getByRole('button', { name: 'Preview' }).click();
  const duration = await previewDuration(page);
  t.is(duration, DURATION);
  t.is(new URL((await page.locator('#preview-video').getAttribute('src'))!, node.url).pathname, `/proxy/${id}`);

  // A poll after the preview: the page keeps refreshing without a reload.
  const updated = await page.locator('#updated').textContent();
  await eventually(async () => (await page.locator('#updated').textContent()) !== updated, UI_TIMEOUT, 'the next poll');

  const path = new URL('admin-page.png', ARTIFACTS).pathname;
  await page.screenshot({ path, fullPage: true });
  t.log(`screenshot: ${path}`);
  t.deepEqual(problems, [], 'no console error, page error or CSP violation');
  await page.close();
});

test.serial('delete asks for confirmation, then removes the video from the store', async (t) => {
  if (chromiumMissing) return t.log(chromiumMissing);
  const node = await adminNode();
  const id = await cacheVideo(node);
  const { page, problems } = await signIn(t, node, id);

  await row(page, id).getByRole('button', { name: 'Delete' }).click();
  await page.locator('#confirm').waitFor({ state: 'visible' });
  t.true(((await page.locator('#confirm-text').textContent()) ?? '').includes(id));
  await page.locator('#confirm-cancel').click();
  await page.locator('#confirm').waitFor({ state: 'hidden' });
  t.true((await statVideo(node.service.store, id as VideoId)).length > 0, 'cancelled: still stored');

  await row(page, id).getByRole('button', { name: 'Delete' }).click();
  await page.locator('#confirm-ok').click();
  await page.locator('#result', { hasText: `Deleted ${id}` }).waitFor({ timeout: UI_TIMEOUT });
  await row(page, id).waitFor({ state: 'detached', timeout: UI_TIMEOUT });
  t.deepEqual(await statVideo(node.service.store, id as VideoId), [], 'nothing of the video is left in the store');
  t.deepEqual(problems, []);
  await page.close();
});

test.serial('prune: the dry run lists what would go and deletes nothing; then for real', async (t) => {
  if (chromiumMissing) return t.log(chromiumMissing);
  const node = await adminNode();
  const id = await cacheVideo(node);
  const { page, problems } = await signIn(t, node, id);

  t.true(await page.locator('#prune-run').isDisabled(), 'no prune for real before a dry run');
  await page.locator('#prune-ttl').fill('0s');
  await page.getByRole('button', { name: 'Dry run' }).click();
  await page.locator('#prune-list li', { hasText: id }).waitFor({ timeout: UI_TIMEOUT });
  t.regex((await page.locator('#result').textContent()) ?? '', /^Dry run: would delete 1 videos/);
  t.true((await statVideo(node.service.store, id as VideoId)).length > 0, 'the dry run deleted nothing');
  t.true(await row(page, id).isVisible());

  await page.locator('#prune-run').click();
  await page.locator('#confirm-ok').click();
  await page.locator('#result', { hasText: 'Pruned: deleted 1 videos' }).waitFor({ timeout: UI_TIMEOUT });
  await row(page, id).waitFor({ state: 'detached', timeout: UI_TIMEOUT });
  t.deepEqual(await statVideo(node.service.store, id as VideoId), [], 'pruned from the store');
  t.deepEqual(problems, []);
  await page.close();
});

test.serial('with the public listener elsewhere (ADMIN_PUBLIC_URL), prefetch and preview go there', async (t) => {
  if (chromiumMissing) return t.log(chromiumMissing);
  const shared = await h.store.fresh();
  const publicNode = await h.node({}, shared);
  const node = await h.node({ ADMIN_TOKEN: TOKEN, ADMIN_PUBLIC_URL: `${publicNode.url}/` }, shared);
  const { page, problems } = await signIn(t, node);
  t.true(await page.locator('#no-videos').isVisible(), 'nothing cached yet');

  const id = h.video(fixture, { reportDuration: DURATION });
  await page.locator('#prefetch-id').fill('not an id');
  await page.locator('#prefetch-go').click();
  await page.locator('#result', { hasText: 'A video id is 11 characters' }).waitFor({ timeout: UI_TIMEOUT });
  await page.locator('#prefetch-id').fill(id);
  await page.locator('#prefetch-go').click();
  await page.locator('#result', { hasText: `Prefetch of ${id} accepted` }).waitFor({ timeout: UI_TIMEOUT });
  // The public node fetched the head into the shared store; this node's page lists it.
  await row(page, id).waitFor({ timeout: UI_TIMEOUT });
  t.true(h.origin.statsFor(id).requests.length > 0, 'the origin was asked for the prefetched video');

  await row(page, id).getByRole('button', { name: 'Preview' }).click();
  const duration = await previewDuration(page);
  t.is(duration, DURATION);
  t.is(await page.locator('#preview-video').getAttribute('src'), `${publicNode.url}/proxy/${id}?format=video`, 'the row\'s format');
  t.is((await publicNode.get(`/proxy/${id}`)).sha256, fixtureSha, 'the public node serves the prefetched video whole');
  t.deepEqual(problems, [], 'no CSP violation going to the other origin');
  await page.close();
});
