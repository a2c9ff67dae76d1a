import test from 'ava';
import { parseRange, startBeforeSize } from '../../src/http/range.js';

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

test('RFC 9110 §14.1.2: a last-byte-pos past the end, of any size (even beyond 2^53), means the last byte', (t) => {
  const big = 5 * 2 ** 20;
  for (const last of ['99999999999999999999', '9007199254740993', String(2 ** 53), '9'.repeat(400)]) {
    t.deepEqual(parseRange(`bytes=1000-${last}`, big), { kind: 'partial', start: 1000, end: big - 1 }, last);
    t.deepEqual(parseRange(`bytes=0-${last}`, size), { kind: 'partial', start: 0, end: size - 1 }, last);
    // A suffix longer than the body is the whole body, as a range.
    t.deepEqual(parseRange(`bytes=-${last}`, size), { kind: 'partial', start: 0, end: size - 1 }, `-${last}`);
  }
  t.deepEqual(parseRange('bytes=9007199254740993-99999999999999999999', size), { kind: 'unsatisfiable' }, 'a first-byte-pos past the end stays 416');
});

test('where a read starts before the size is known: 0 for the whole body, the first-byte-pos, none for a suffix or a broken range', (t) => {
  t.is(startBeforeSize(undefined), 0);
  t.is(startBeforeSize('bytes=0-'), 0);
  t.is(startBeforeSize('bytes=1048676-'), 1048676);
  t.is(startBeforeSize('bytes=500-999'), 500);
  t.is(startBeforeSize('items=5-'), 0, 'another unit: the whole body');
  t.is(startBeforeSize('bytes=0-1,5-9'), 0, 'several ranges: the whole body');
  for (const header of ['bytes=-500', 'bytes= -500', 'bytes=abc', 'bytes=5-2']) t.is(startBeforeSize(header), undefined, header);
});
