import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Every byte of every file under `dir` (objects and temporary files), measured
 * apart from what tubecache counts. A directory removed during the walk (its
 * last file evicted) makes the walk start again.
 */
export async function bytesUnder(dir: string): Promise<number> {
  for (;;) {
    let names: string[];
    try {
      names = await readdir(dir, { recursive: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    let total = 0;
    for (const name of names) {
      const info = await stat(join(dir, name)).catch(() => undefined);
      if (info?.isFile()) total += info.size;
    }
    return total;
  }
}
