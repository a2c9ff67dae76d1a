import test from 'ava';
import { parse } from 'smol-toml';
import { readDeploy, unknownSettings } from './files.js';

const fly = parse(readDeploy('fly.toml')) as any;

test('fly.toml: graceful stop, metrics scraping and an HTTP health check on the served port', (t) => {
  t.is(fly.kill_signal, 'SIGTERM', 'a signal tubecache stops on');
  t.true(Number.isInteger(fly.kill_timeout) && fly.kill_timeout > 5 && fly.kill_timeout <= 300, 'seconds, within Fly\'s limit of 300');
  const port = fly.http_service.internal_port;
  t.is(String(port), fly.env.PORT);
  t.deepEqual(fly.metrics, { port, path: '/metrics' });
  const checks = fly.http_service.checks as { method: string; path: string; interval: string; timeout: string }[];
  t.true(checks.some((check) => check.method === 'GET' && check.path === '/healthz'), 'the liveness route, which does not depend on S3 or YouTube');
  for (const check of checks) t.regex(`${check.interval} ${check.timeout}`, /^\d+s \d+s$/);
});

test('fly.toml sets only tubecache settings, with no S3 server baked in', (t) => {
  t.deepEqual(unknownSettings(Object.keys(fly.env)), []);
  t.false('S3_ENDPOINT' in fly.env, 'the endpoint and keys are secrets (fly secrets set)');
  t.false('PRUNE_INTERVAL' in fly.env, '[env] applies to every machine; one pruner per bucket');
});
