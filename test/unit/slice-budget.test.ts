import test from 'ava';
import { SliceBudget } from '../../src/cache/slice-budget.js';
import { SliceFlight } from '../../src/cache/slice-flight.js';
import { SliceStream } from '../../src/cache/slice-stream.js';

const KiB = 1024;
const never = new AbortController().signal;

test('a Buffer shared by several holders is charged once, until the last lets go', (t) => {
  const budget = new SliceBudget(64 * KiB);
  const charge = budget.tryCharge(10 * KiB)!;
  charge.hold();
  charge.hold();
  t.is(budget.live, 10 * KiB);
  charge.release();
  charge.release();
  t.is(budget.live, 10 * KiB, 'one holder left');
  charge.release();
  t.is(budget.live, 0);
  charge.release();
  t.is(budget.live, 0, 'a release too many frees nothing twice');
  t.throws(() => charge.hold(), { message: /released/ });
});

test('kept slices stop short of the share left for pass-through chunks; reclaim is asked for exactly what is missing', (t) => {
  const budget = new SliceBudget(64 * KiB);
  t.is(budget.keepLimit, 48 * KiB);
  const asked: number[] = [];
  budget.reclaimWith((bytes) => asked.push(bytes));
  const kept = budget.tryCharge(42 * KiB)!;
  t.is(budget.tryCharge(8 * KiB), undefined, '50 KiB would pass the keep limit');
  t.deepEqual(asked, [2 * KiB]);
  t.is(budget.live, 42 * KiB);
  kept.release();
});

test('a charge that waits is granted in order as bytes are released, never over the budget', async (t) => {
  const budget = new SliceBudget(64 * KiB);
  const first = await budget.charge(60 * KiB, never);
  const order: string[] = [];
  const big = budget.charge(8 * KiB, never).then((charge) => (order.push('big'), charge));
  const small = budget.charge(2 * KiB, never).then((charge) => (order.push('small'), charge));
  await Promise.resolve();
  t.deepEqual(order, []);
  t.is(budget.tryCharge(1 * KiB), undefined, 'no overtaking the waiters');
  first.shrink(54 * KiB);
  const [a, b] = await Promise.all([big, small]);
  t.deepEqual(order, ['big', 'small']);
  t.is(budget.live, 64 * KiB);
  t.true(budget.live <= budget.maxBytes);
  for (const charge of [first, a, b]) charge.release();
  t.is(budget.live, 0);
});

test('a waiting charge ends with its signal, and bytes that can never fit are refused at once', async (t) => {
  const budget = new SliceBudget(64 * KiB);
  const all = await budget.charge(64 * KiB, never);
  const leave = new AbortController();
  const waiting = budget.charge(KiB, leave.signal);
  leave.abort(new Error('reader gone'));
  await t.throwsAsync(waiting, { message: 'reader gone' });
  all.release();
  t.is(budget.live, 0, 'the aborted waiter took nothing');
  await t.throwsAsync(budget.charge(50 * KiB, never, true), { instanceOf: RangeError });
});

test('a waiter is served by reclaiming once the last reader of a cached slice lets go', async (t) => {
  const budget = new SliceBudget(64 * KiB);
  const cached = budget.tryCharge(48 * KiB)!;
  // The cache's hold is the first; a reader takes a second.
  cached.hold();
  budget.reclaimWith(() => {
    if (cached.holders === 1) cached.release();
  });
  const filler = await budget.charge(16 * KiB, never);
  const waiting = budget.charge(4 * KiB, never);
  await Promise.resolve();
  t.is(budget.live, 64 * KiB);
  cached.release(); // the reader is done: only the cache holds it, so it can go
  const granted = await waiting;
  t.is(budget.live, 20 * KiB);
  granted.release();
  filler.release();
});

test('a flight gives its bytes back when the fill has ended and its last reader let go, on success and on failure', (t) => {
  const budget = new SliceBudget(64 * KiB);
  const done = new SliceFlight(4 * KiB, 'origin', budget.tryCharge(4 * KiB)!);
  done.hold();
  done.push(Buffer.alloc(4 * KiB, 1));
  done.finish();
  done.close();
  t.is(budget.live, 4 * KiB, 'a reader still holds it');
  done.release();
  t.is(budget.live, 0);

  const failed = new SliceFlight(4 * KiB, 'origin', budget.tryCharge(4 * KiB)!);
  failed.hold();
  failed.push(Buffer.alloc(KiB));
  failed.release();
  t.true(failed.aborted, 'no reader left: the fetch stops');
  failed.fail(new Error('aborted'));
  failed.close();
  t.is(budget.live, 0);
});

test('a stream starts at its first read, charges one chunk at a time and waits for its reader; a reader that leaves releases the chunk and stops the fill', async (t) => {
  const budget = new SliceBudget(64 * KiB);
  let pushed: Promise<void> | undefined;
  const stream: SliceStream = new SliceStream(3 * KiB, 'origin', budget, () => (pushed = stream.push(Buffer.alloc(KiB, 1))));
  stream.hold();
  const reader = new AbortController();
  const chunks = stream.read(0, 3 * KiB - 1, reader.signal);
  t.is(pushed, undefined, 'a read-ahead stream does nothing until read');
  const first = await chunks.next();
  t.deepEqual(first.value, Buffer.alloc(KiB, 1));
  t.is(budget.live, KiB, 'the chunk is charged while the reader has it');
  let secondPushed = false;
  void pushed!.then(() => stream.push(Buffer.alloc(KiB, 2))).then(() => (secondPushed = true), () => (secondPushed = true));
  const second = await chunks.next();
  t.deepEqual(second.value, Buffer.alloc(KiB, 2));
  t.false(secondPushed, 'the fill waits until the reader takes the chunk');
  t.is(budget.live, KiB, 'the first chunk was released when the reader asked for the next');
  await chunks.return(undefined);
  stream.release();
  t.true(stream.aborted);
  t.is(budget.live, 0);
});

test('a stream its reader never reached ends failed when released, with nothing charged', (t) => {
  const budget = new SliceBudget(64 * KiB);
  let started = false;
  const stream = new SliceStream(3 * KiB, 'origin', budget, () => (started = true));
  stream.hold();
  stream.release();
  t.false(started);
  t.is(stream.state, 'failed');
  t.is(budget.live, 0);
});

test('a released slice Buffer is reused by the next slice of its size, counted live while pooled, and dropped first when room is needed', (t) => {
  const budget = new SliceBudget(64 * KiB, 16 * KiB);
  const first = budget.tryCharge(16 * KiB)!;
  const bytes = first.allocate(16 * KiB);
  first.release();
  t.is(budget.live, 16 * KiB, 'pooled, still counted');
  t.is(budget.pooled, 16 * KiB);
  const second = budget.tryCharge(16 * KiB)!;
  t.is(budget.live, 16 * KiB, 'the pooled Buffer was taken over, not added');
  t.is(second.allocate(16 * KiB), bytes, 'the same memory');
  t.is(budget.pooled, 0);
  second.release();
  // A pass-through chunk that needs the room gets it: the pooled Buffer goes first.
  const chunks = Array.from({ length: 3 }, () => budget.tryCharge(16 * KiB)!);
  for (const chunk of chunks) chunk.allocate(16 * KiB);
  for (const chunk of chunks) chunk.release();
  t.is(budget.pooled, 48 * KiB);
  const big = budget.tryCharge(40 * KiB);
  t.truthy(big);
  t.true(budget.live <= budget.keepLimit);
  t.is(budget.pooled, 0);
  big!.release();
  t.is(budget.live, 0, 'a Buffer of another size is not pooled');
});

test('however many slices are let go at once, every Buffer is pooled and reused: only the budget bounds the pool', (t) => {
  const budget = new SliceBudget(1024 * KiB, 16 * KiB);
  const charges = Array.from({ length: 40 }, () => budget.tryCharge(16 * KiB)!);
  const buffers = new Set(charges.map((charge) => charge.allocate(16 * KiB)));
  for (const charge of charges) charge.release();
  t.is(budget.pooled, 40 * 16 * KiB, 'none dropped (a dropped Buffer lingers uncounted until V8 collects it)');
  t.is(budget.live, budget.pooled);
  const again = Array.from({ length: 40 }, () => budget.tryCharge(16 * KiB)!);
  t.true(again.every((charge) => buffers.has(charge.allocate(16 * KiB))), 'the next 40 slices get the same memory');
  t.is(budget.live, 40 * 16 * KiB);
  t.is(budget.pooled, 0);
});
