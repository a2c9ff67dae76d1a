/**
 * The package as users get it: `npm pack` of the compiled dist/, installed
 * from the tarball into an empty project. There, plain Node (no tsx, no source
 * condition) imports tubecache/client and loads none of the server's modules
 * or dependencies; a strict `nodenext` TypeScript project type-checks against
 * the client's declarations without reading the AWS SDK's; and the installed
 * `tubecache` command answers --version.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import test from 'ava';
import { execa } from 'execa';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };

interface Packed {
  filename: string;
  files: { path: string }[];
}

let project = '';
let packed: Packed;

test.before(async () => {
  project = await mkdtemp(join(tmpdir(), 'tubecache-pack-'));
  // dist/ is built already (npm ci's prepare, npm test's pretest). --ignore-scripts: packing
  // would rebuild it, deleting it under the CLI tests that run beside this file.
  const pack = await execa('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', project], { cwd: ROOT });
  packed = (JSON.parse(pack.stdout) as Packed[])[0]!;
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  // The dependencies come from npm's cache when they are there (they are after the checkout's npm ci).
  await execa('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', join(project, packed.filename)], { cwd: project });
});

test.after.always(async () => {
  if (project) await rm(project, { recursive: true, force: true });
});

test('the tarball holds the compiled code, the command, README and LICENSE, and nothing else', (t) => {
  const paths = packed.files.map((file) => file.path);
  const stray = paths.filter((path) => !/^(dist\/.+\.(js|d\.ts)|bin\/tubecache\.js|package\.json|README\.md|LICENSE)$/.test(path));
  t.deepEqual(stray, [], 'no sources, tests, benches or fixtures');
  for (const path of ['dist/client.js', 'dist/client.d.ts', 'dist/cli.js', 'bin/tubecache.js', 'LICENSE']) t.true(paths.includes(path), path);
});

test('plain Node imports tubecache/client and loads none of the server modules or dependencies', async (t) => {
  // A module hook (off the main thread) appends each URL Node loads to a file, synchronously, before the module runs.
  const log = join(project, 'loaded.txt');
  await writeFile(
    join(project, 'hooks.mjs'),
    `import { appendFileSync } from 'node:fs';
let log;
export function initialize(data) { log = data.log; }
export async function load(url, context, nextLoad) { appendFileSync(log, url + '\\n'); return nextLoad(url, context); }
`,
  );
  await writeFile(
    join(project, 'import-client.mjs'),
    `import { register } from 'node:module';
register('./hooks.mjs', import.meta.url, { data: { log: ${JSON.stringify(log)} } });
const { TubecacheClient } = await import('tubecache/client');
console.log(new TubecacheClient({ baseUrl: 'http://cache.example/' }).proxyUrl('dQw4w9WgXcQ'));
`,
  );
  const run = await execa(process.execPath, ['import-client.mjs'], { cwd: project, reject: false });
  t.is(run.exitCode, 0, run.stderr);
  t.is(run.stdout, 'http://cache.example/proxy/dQw4w9WgXcQ', 'the imported client works');

  const dist = pathToFileURL(join(project, 'node_modules/tubecache/dist/')).href;
  const loaded = (await readFile(log, 'utf8')).split('\n').filter((url) => url && !url.startsWith('node:'));
  t.deepEqual(loaded.filter((url) => !url.startsWith(dist)), [], 'nothing outside tubecache (no AWS SDK, koa, pino, commander…)');
  t.deepEqual(loaded.map((url) => url.slice(dist.length)).sort(), ['client.js', 'errors.js', 'limiter.js', 'origin/format.js', 'origin/video-id.js'], 'only the client and the dependency-free modules it imports');
});

test('a strict nodenext TypeScript project type-checks against the client without the AWS SDK types', async (t) => {
  const consumer = join(project, 'ts');
  await mkdir(consumer);
  await writeFile(
    join(consumer, 'tsconfig.json'),
    JSON.stringify({
      // No @types: what the declarations need must come with them. skipLibCheck off: they are checked too.
      compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2023', lib: ['es2023'], types: [], skipLibCheck: false, noEmit: true },
      files: ['consumer.ts'],
    }),
  );
  await writeFile(join(consumer, 'package.json'), JSON.stringify({ type: 'module' }));
  await writeFile(
    join(consumer, 'consumer.ts'),
    `import { createTubecacheClient, TubecacheClientError, type PrefetchResult, type VideoStat } from 'tubecache/client';

const client = createTubecacheClient({ baseUrl: 'http://127.0.0.1:8080', prefetchConcurrency: 2 });
export const url: string = client.proxyUrl('dQw4w9WgXcQ');
export const warmed: Promise<PrefetchResult[]> = client.prefetchUpcoming(['dQw4w9WgXcQ']);

export async function storedSlices(id: string): Promise<number> {
  try {
    const stat: VideoStat = await client.stat(id);
    return stat.s3.reduce((sum, detail) => sum + detail.slices.length, 0);
  } catch (error) {
    if (error instanceof TubecacheClientError && error.serverCode === 'NOT_FOUND') return 0;
    throw error;
  }
}

// The declarations are real types, not any: a wrong option must not compile.
// @ts-expect-error baseUrl is a string
createTubecacheClient({ baseUrl: 8080 });
`,
  );
  const tsc = await execa(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', consumer, '--listFiles'], { cwd: consumer, reject: false });
  t.is(tsc.exitCode, 0, tsc.stdout + tsc.stderr);
  // Declarations read from the consumer's node_modules (TypeScript's own lib files come from the checkout).
  const installed = join(project, 'node_modules/');
  const read = tsc.stdout.split('\n').filter((file) => file.startsWith(installed));
  t.true(read.includes(`${installed}tubecache/dist/client.d.ts`), 'the types come from the package');
  t.deepEqual(read.filter((file) => !file.startsWith(`${installed}tubecache/`)), [], 'no declarations of other packages (AWS SDK, @types/node…)');
});

test('the installed tubecache command prints the package version for --version and -V', async (t) => {
  const bin = join(project, 'node_modules/.bin/tubecache');
  for (const flag of ['--version', '-V']) {
    const run = await execa(process.execPath, [bin, flag], { cwd: project, reject: false });
    t.is(run.exitCode, 0, run.stderr);
    t.is(run.stdout, version, flag);
  }
});

test('the installed command runs by its first line, which gives Node its flags (`env -S node --max-semi-space-size=2`)', async (t) => {
  const bin = join(project, 'node_modules/.bin/tubecache');
  // As a shell runs it: the first line picks `node` from the PATH, here the Node running this test.
  const path = `${dirname(process.execPath)}:${process.env.PATH ?? ''}`;
  const run = await execa(bin, ['--version'], { cwd: project, env: { PATH: path }, reject: false });
  t.is(run.exitCode, 0, run.stderr);
  t.is(run.stdout, version);
  // A flag Node did not know would have stopped it ("bad option") before the version.
  t.regex(await readFile(bin, 'utf8'), /^#!\/usr\/bin\/env -S node --max-semi-space-size=2\n/);
});
