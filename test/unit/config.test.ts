import { hostname } from 'node:os';
import test from 'ava';
import { loadConfig, SETTINGS } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { parseDuration, parseSize } from '../../src/units.js';

test('embedded defaults load with an empty environment', (t) => {
  const config = loadConfig({});
  t.is(config.PORT, 8080);
  t.is(config.SLICE_BYTES, 2 ** 20);
  t.is(config.MEMORY_CACHE_BYTES, 100 * 2 ** 20);
  t.is(config.MEMORY_CACHE_TTL, 5 * 60_000);
  t.is(config.S3_CHECKSUMS, 'WHEN_REQUIRED');
  t.deepEqual(config.ORIGIN_ALLOWED_HOSTS, ['*.googlevideo.com', '*.youtube.com']);
  t.is(config.PRUNE_INTERVAL, undefined);
});

test('sizes and durations accept the documented forms', (t) => {
  t.is(parseSize('1048576'), 1048576);
  t.is(parseSize('100MiB'), 100 * 2 ** 20);
  t.is(parseSize('1MB'), 1e6);
  t.is(parseSize('1.5GiB'), 1.5 * 2 ** 30);
  t.is(parseSize('ten'), undefined);
  t.is(parseDuration('90s'), 90_000);
  t.is(parseDuration('5m'), 300_000);
  t.is(parseDuration('2h'), 7_200_000);
  t.is(parseDuration('20'), 20_000);
  t.is(parseDuration('soon'), undefined);
});

test('every invalid value stops start-up with a message naming the variable', (t) => {
  const bad: Record<string, string> = {
    PORT: '70000',
    MEMORY_CACHE_BYTES: 'lots',
    MEMORY_CACHE_TTL: 'forever',
    SLICE_BYTES: '1KiB',
    PERSIST: 'some',
    S3_FORCE_PATH_STYLE: 'maybe',
    YTDLP_EXTRA_ARGS: '[1, 2]',
    ORIGIN_ALLOWED_HOSTS: 'good.com,bad host',
    YTDLP_URL_TEMPLATE: 'https://example.com/watch',
    LOG_LEVEL: 'loud',
    S3_IDLE_TIMEOUT: '0',
    ADMIN_PUBLIC_URL: 'cache.example.com',
  };
  for (const [name, value] of Object.entries(bad)) {
    const error = t.throws(() => loadConfig({ [name]: value }), { instanceOf: ConfigError }, name);
    t.is(error?.variable, name);
    t.true(error?.message.startsWith(`${name}:`), error?.message);
  }
});

test('MEMORY_CACHE_BYTES holds at least two slices: less stops start-up naming it and SLICE_BYTES', (t) => {
  t.is(loadConfig({ MEMORY_CACHE_BYTES: '2MiB', SLICE_BYTES: '1MiB' }).MEMORY_CACHE_BYTES, 2 * 2 ** 20);
  const error = t.throws(() => loadConfig({ MEMORY_CACHE_BYTES: '1MiB', SLICE_BYTES: '1MiB' }), { instanceOf: ConfigError });
  t.is(error?.variable, 'MEMORY_CACHE_BYTES');
  t.true(error?.message.includes('SLICE_BYTES'), error?.message);
});

test('S3_TIMEOUT, replaced by three deadlines, stops start-up naming its replacements', (t) => {
  const error = t.throws(() => loadConfig({ S3_TIMEOUT: '5s' }), { instanceOf: ConfigError });
  t.is(error?.variable, 'S3_TIMEOUT');
  for (const name of ['S3_CONNECT_TIMEOUT', 'S3_FIRST_BYTE_TIMEOUT', 'S3_IDLE_TIMEOUT']) t.true(error?.message.includes(name), name);
});

test('ADMIN_PUBLIC_URL is an http(s) URL, kept without its trailing slash', (t) => {
  t.is(loadConfig({ ADMIN_PUBLIC_URL: 'https://cache.example.com/' }).ADMIN_PUBLIC_URL, 'https://cache.example.com');
  t.is(loadConfig({ ADMIN_PUBLIC_URL: 'http://10.0.0.5:8080/tube/' }).ADMIN_PUBLIC_URL, 'http://10.0.0.5:8080/tube');
  for (const bad of ['ftp://cache.example.com', 'https://cache.example.com/?x=1', 'https://user@cache.example.com']) t.throws(() => loadConfig({ ADMIN_PUBLIC_URL: bad }), { instanceOf: ConfigError }, bad);
});

test('PEER_URL and PEER_TOKEN: set together, {hostname} and {VARIABLE} filled in (an unset one stops start-up), a token of 16 characters or more that is not ADMIN_TOKEN', (t) => {
  const token = 'peer-token-0123456789';
  t.is(loadConfig({ PEER_URL: 'http://{hostname}.vm.app.internal:8080/', PEER_TOKEN: token }).PEER_URL, `http://${hostname().toLowerCase()}.vm.app.internal:8080`);
  t.is(loadConfig({ PEER_URL: 'http://{FLY_MACHINE_ID}.vm.app.internal:8080', PEER_TOKEN: token, FLY_MACHINE_ID: '148ed193b95389' }).PEER_URL, 'http://148ed193b95389.vm.app.internal:8080');
  const cases: [Record<string, string>, string][] = [
    [{ PEER_URL: 'http://10.0.0.5:8080' }, 'PEER_TOKEN'],
    [{ PEER_TOKEN: token }, 'PEER_URL'],
    [{ PEER_URL: 'http://10.0.0.5:8080', PEER_TOKEN: 'short' }, 'PEER_TOKEN'],
    [{ PEER_URL: 'http://10.0.0.5:8080', PEER_TOKEN: token, ADMIN_TOKEN: token }, 'PEER_TOKEN'],
    [{ PEER_URL: 'ftp://10.0.0.5', PEER_TOKEN: token }, 'PEER_URL'],
    [{ PEER_URL: 'http://{FLY_MACHINE_ID}.vm.app.internal:8080', PEER_TOKEN: token }, 'PEER_URL'],
  ];
  for (const [env, variable] of cases) t.is(t.throws(() => loadConfig(env), { instanceOf: ConfigError })?.variable, variable, JSON.stringify(env));
});

test('extra yt-dlp arguments come as JSON or words', (t) => {
  t.deepEqual(loadConfig({ YTDLP_EXTRA_ARGS: '--cookies /etc/yt/cookies.txt' }).YTDLP_EXTRA_ARGS, ['--cookies', '/etc/yt/cookies.txt']);
  t.deepEqual(loadConfig({ YTDLP_EXTRA_ARGS: '["--proxy", "socks5://a b"]' }).YTDLP_EXTRA_ARGS, ['--proxy', 'socks5://a b']);
});

test('every setting has a default that parses and a description', (t) => {
  for (const [name, setting] of Object.entries(SETTINGS)) {
    t.notThrows(() => setting.parse(setting.default, name), name);
    t.true(setting.doc.length > 5, name);
  }
});

test('FORMATS: name=selector pairs, the first the default; bad names, pairs and the retired YTDLP_FORMAT name their variable', (t) => {
  const defaults = loadConfig({}).FORMATS;
  t.is(String(defaults.default), 'video');
  t.deepEqual([...defaults.selectors] as [string, string][], [['video', '18/b'], ['audio', '140/bestaudio[ext=m4a]/bestaudio']]);
  const custom = loadConfig({ FORMATS: 'music=bestaudio[ext=m4a], video-720=22/18' }).FORMATS;
  t.is(String(custom.default), 'music', 'the first listed is the default');
  t.deepEqual([...custom.selectors] as [string, string][], [['music', 'bestaudio[ext=m4a]'], ['video-720', '22/18']]);

  const refused: [string, RegExp][] = [
    ['Video=18', /must match/],
    ['-video=18', /must match/],
    [`${'a'.repeat(33)}=18`, /must match/],
    ['video', /name=selector/],
    ['video=', /name=selector/],
    ['video=18,video=22', /given twice/],
    ['video=18 22', /white space/],
    ['', /name=selector/],
  ];
  for (const [value, message] of refused) {
    const error = t.throws(() => loadConfig({ FORMATS: value }), { instanceOf: ConfigError }, value);
    t.is(error?.variable, 'FORMATS', value);
    t.regex(error?.message ?? '', message, value);
  }
  const retired = t.throws(() => loadConfig({ YTDLP_FORMAT: '18/b' }), { instanceOf: ConfigError });
  t.is(retired?.variable, 'YTDLP_FORMAT');
  t.regex(retired?.message ?? '', /retired.*FORMATS/);
});
