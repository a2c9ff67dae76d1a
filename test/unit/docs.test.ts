import { readFileSync } from 'node:fs';
import test from 'ava';
import { SETTINGS } from '../../src/config.js';
import { ERRORS } from '../../src/errors.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

test('every configuration variable is documented in the README', (t) => {
  for (const name of Object.keys(SETTINGS)) t.true(readme.includes(`| \`${name}\` |`), name);
});

test('every error code is documented in the README', (t) => {
  for (const code of Object.keys(ERRORS)) t.true(readme.includes(`| \`${code}\` |`), code);
});
