import test from 'ava';
import { ResolutionCache, type Resolution } from '../../src/origin/resolution-cache.js';
import type { VideoId } from '../../src/origin/video-id.js';

const id = 'abcdefghijk' as VideoId;
const resolution = (url: string): Resolution => ({ url, headers: {}, filesize: 1, duration: 1, formatId: '18', ext: 'mp4', expiresAt: Date.now() + 60_000 });

test('answers are kept per format and expire with their own TTL', async (t) => {
  const eighteen = new ResolutionCache('18');
  eighteen.setResolution(id, resolution('https://a/'), 60_000);
  t.is(eighteen.get(id)?.resolution?.url, 'https://a/');
  t.is(new ResolutionCache('22').get(id), undefined, 'another format is another key');

  eighteen.setRefusal(id, { code: 'VIDEO_UNAVAILABLE', detail: 'gone' }, 30);
  t.is(eighteen.get(id)?.refusal?.code, 'VIDEO_UNAVAILABLE');
  await new Promise((resolve) => setTimeout(resolve, 60));
  t.is(eighteen.get(id), undefined, 'the refusal expired');
});

test('bounded: the least recently used answers go first', (t) => {
  const cache = new ResolutionCache('18');
  const ids = Array.from({ length: 10_001 }, (_, i) => `v${String(i).padStart(10, '0')}` as VideoId);
  for (const each of ids) cache.setResolution(each, resolution(`https://${each}/`), 60_000);
  t.is(cache.get(ids[0]!), undefined);
  t.truthy(cache.get(ids[10_000]!));
});
