#!/usr/bin/env -S node --max-semi-space-size=2
// The `tubecache` command: runs the compiled dist/ (`npm ci` builds it through
// the prepare script; run `npm run build` after editing src/). The flag on the
// first line keeps V8's young generation small (2 MiB semi-spaces instead of
// 16): every socket read is a new Buffer, and a small young generation frees
// the dropped ones within a few MB of traffic instead of ~100 MB, which cut
// peak RSS by 70-100 MB under load at no cost in throughput (README,
// "Memory budget"). bench/systems/tubecache.ts reads the flags from here.
import { existsSync } from 'node:fs';

const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  console.error(`tubecache needs Node.js 22.12 or newer (22 or 24 LTS); this is ${process.version}. In a checkout, npm start uses the Node 24 that npm ci installs.`);
  process.exit(2);
}
const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  console.error('tubecache: dist/ is missing; run `npm run build` (npm ci runs it)');
  process.exit(2);
}
await import(cli.href);
