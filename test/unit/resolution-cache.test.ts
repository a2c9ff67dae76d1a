import test from 'ava';
import { ResolutionCache, type Resolution } from '../../src/origin/resolution-cache.js';
import type { VideoId } from '../../src/origin/video-id.js';

const id = 'abcdefghijk' as VideoId;
const eighteen = { id, selector: '18' };
const resolution = (url: string): Resolution => ({ url, headers: {}, filesize: 1, duration: 1, expiresAt: Date.now() + 60_000 });

test('answers are kept per video and selector and expire with their own TTL', async (t) => {
  const cache = new ResolutionCache();
  cache.setResolution(eighteen, resolution('https://a/'), 60_000);
  t.is(cache.get(eighteen)?.resolution?.url, 'https://a/');
  t.is(cache.get({ id, selector: '140' }), undefined, 'another selector is another key');

  cache.setRefusal(eighteen, { code: 'VIDEO_UNAVAILABLE', detail: 'gone' }, 30);
  t.is(cache.get(eighteen)?.refusal?.code, 'VIDEO_UNAVAILABLE');
  await new Promise((resolve) => setTimeout(resolve, 60));
  t.is(cache.get(eighteen), undefined, 'the refusal expired');
});

test('bounded: the least recently used answers go first', (t) => {
  const cache = new ResolutionCache();
  const videos = Array.from({ length: 10_001 }, (_, i) => ({ id: `v${String(i).padStart(10, '0')}` as VideoId, selector: '18' }));
  for (const each of videos) cache.setResolution(each, resolution(`https://${each.id}/`), 60_000);
  t.is(cache.get(videos[0]!), undefined);
  t.truthy(cache.get(videos[10_000]!));
});
