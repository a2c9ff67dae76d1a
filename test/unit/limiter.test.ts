import test from 'ava';
import { Limiter } from '../../src/limiter.js';

test('runs at most `concurrency` tasks, queues up to `maxQueued`, refuses the rest', async (t) => {
  const limiter = new Limiter(2, 1);
  let running = 0;
  let peak = 0;
  const gates: (() => void)[] = [];
  const task = () =>
    new Promise<void>((resolve) => {
      running++;
      peak = Math.max(peak, running);
      gates.push(() => {
        running--;
        resolve();
      });
    });
  const accepted = [limiter.tryRun(task), limiter.tryRun(task), limiter.tryRun(task)];
  t.truthy(accepted.every(Boolean));
  t.is(limiter.tryRun(task), undefined, 'the fourth is refused');
  t.is(limiter.active, 2);
  t.is(limiter.queued, 1);
  gates.shift()!();
  await new Promise((resolve) => setImmediate(resolve));
  t.is(limiter.active, 2, 'the queued task took the freed slot');
  t.truthy(limiter.tryRun(task), 'and the queue has room again');
  while (gates.length) {
    gates.shift()!();
    await new Promise((resolve) => setImmediate(resolve));
  }
  await limiter.idle();
  t.is(peak, 2);
});
