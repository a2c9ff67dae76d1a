import test from 'ava';
import { parseRange } from '../../src/http/range.js';

const size = 1000;

test('one range of each form maps to exact bounds', (t) => {
  t.deepEqual(parseRange('bytes=0-0', size), { kind: 'partial', start: 0, end: 0 });
  t.deepEqual(parseRange('bytes=999-999', size), { kind: 'partial', start: 999, end: 999 });
  t.deepEqual(parseRange('bytes=100-', size), { kind: 'partial', start: 100, end: 999 });
  t.deepEqual(parseRange('bytes=-10', size), { kind: 'partial', start: 990, end: 999 });
  t.deepEqual(parseRange('bytes=-5000', size), { kind: 'partial', start: 0, end: 999 });
  t.deepEqual(parseRange('bytes=900-5000', size), { kind: 'partial', start: 900, end: 999 });
  t.deepEqual(parseRange('Bytes = 1 - 2', size), { kind: 'partial', start: 1, end: 2 });
});

test('no header, another unit, or several ranges mean the whole body', (t) => {
  t.deepEqual(parseRange(undefined, size), { kind: 'whole' });
  t.deepEqual(parseRange('', size), { kind: 'whole' });
  t.deepEqual(parseRange('items=0-1', size), { kind: 'whole' });
  t.deepEqual(parseRange('bytes=0-1,5-6', size), { kind: 'whole' });
});

test('out of bounds or malformed byte ranges are unsatisfiable', (t) => {
  for (const header of ['bytes=1000-', 'bytes=1000-1001', 'bytes=5-2', 'bytes=-0', 'bytes=-', 'bytes=abc', 'bytes=1-2-3', 'bytes=99999999999999999999-']) {
    t.deepEqual(parseRange(header, size), { kind: 'unsatisfiable' }, header);
  }
});
