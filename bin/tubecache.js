#!/usr/bin/env node
// The `tubecache` command: runs the compiled dist/ (`npm ci` builds it through
// the prepare script; run `npm run build` after editing src/).
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
