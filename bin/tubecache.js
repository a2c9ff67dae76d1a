#!/usr/bin/env node
// The `tubecache` command: the TypeScript sources through tsx in a checkout,
// the compiled dist/ where there are no sources (the Docker image).
import { existsSync } from 'node:fs';

const source = new URL('../src/cli.ts', import.meta.url);
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else {
  await import(new URL('../dist/cli.js', import.meta.url).href);
}
