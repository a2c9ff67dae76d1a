import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';
import { TubeError } from '../errors.js';

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * `Authorization: Bearer <token>`: 401 without it, 403 with another. The
 * tokens are compared as SHA-256 digests with timingSafeEqual, so neither the
 * content nor the length of the token leaks through response times.
 */
export function checkBearer(token: string, realm: string) {
  const expected = digest(token);
  return (ctx: Context) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(ctx.get('Authorization'));
    if (!match) {
      ctx.set('WWW-Authenticate', `Bearer realm="${realm}"`);
      throw new TubeError('UNAUTHORIZED');
    }
    if (!timingSafeEqual(digest(match[1]!), expected)) throw new TubeError('FORBIDDEN');
  };
}
