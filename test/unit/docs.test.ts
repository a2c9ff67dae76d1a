import { readFileSync } from 'node:fs';
import test from 'ava';
import { SETTINGS } from '../../src/config.js';
import { ERRORS, TubeError, type ErrorCode } from '../../src/errors.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

test('every configuration variable is documented in the README', (t) => {
  for (const name of Object.keys(SETTINGS)) t.true(readme.includes(`| \`${name}\` |`), name);
});

test('every error code is documented in the README with its status', (t) => {
  for (const [code, { status }] of Object.entries(ERRORS)) t.true(readme.includes(`| \`${code}\` | ${status} |`), code);
});

test('every 429 and 503 in the error table says when to retry, and a TubeError carries it', (t) => {
  const retryable = Object.entries(ERRORS).filter(([, { status }]) => status === 429 || status === 503);
  t.true(retryable.length > 0);
  for (const [code, spec] of retryable) {
    t.true('retryAfter' in spec && Number.isInteger(spec.retryAfter) && spec.retryAfter > 0, code);
    t.is(new TubeError(code as ErrorCode).retryAfter, 'retryAfter' in spec ? spec.retryAfter : undefined, code);
  }
  t.is(new TubeError('STORE_ERROR', 'detail', { retryAfter: 9 }).retryAfter, 9, 'a cause that knows better overrides the table');
});
