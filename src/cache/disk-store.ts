import { randomUUID } from 'node:crypto';
import { constants, type Dirent } from 'node:fs';
import { access, link, mkdir, open, opendir, readdir, rename, rm, rmdir, stat, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { LRUCache } from 'lru-cache';
import { TubeError } from '../errors.js';
import { checkConditions, errorBoundary } from './store-util.js';
import { PAGE_MAX, clampRange, type ByteRange, type ListOptions, type ListPage, type ObjectBody, type ObjectHead, type ObjectInfo, type ObjectStore, type PutOptions } from './store.js';

/** A header line longer than this is not one of ours. */
const HEADER_MAX = 64 * 1024;
const READ_CHUNK = 64 * 1024;
/** Files stat'ed at once when the directory is scanned. */
const SCAN_BATCH = 256;
/**
 * A directory's sorted entries are kept this long for the next listing pages:
 * this process's own puts and deletes drop them at once; another process's
 * (the CLI beside `serve`) show after at most this long, as a key written
 * during a listing may or may not appear in it.
 */
const LISTING_TTL_MS = 5_000;
/** Directories whose sorted entries are kept at once. */
const LISTINGS_MAX = 64;

/** A directory entry as a listing orders it: its key part ("name", or "name/" for a directory) as bytes. */
interface ListingEntry {
  readonly name: string;
  readonly directory: boolean;
  readonly part: string;
}
/** A put's pieces go to the file in batches of about this many bytes, or pieces (IOV_MAX is 1024). */
const WRITE_BATCH_BYTES = 1024 * 1024;
const WRITE_BATCH_PIECES = 512;
/** Temporary files older than this at start-up were left by a process that died mid-put. */
const STALE_TEMP_MS = 60 * 60_000;

interface Header {
  etag: string;
  contentType?: string;
  metadata: Record<string, string>;
}

/**
 * An ObjectStore in a local directory, for one node without an S3 server:
 * object `videos/x/18/slices/0` is the file `{dir}/objects/videos/x/18/slices/0`.
 * Each file starts with one JSON line (etag, content type, metadata), then the
 * bytes. A put writes `{dir}/tmp/<uuid>`, fsyncs it and renames it into place,
 * so readers see the old object or the new one, never part of one. The
 * directory is not fsynced: a rename lost in a crash is a miss, not damage. Conditional
 * puts: `ifNoneMatch` is a link(2), atomic across processes; `ifMatch` is
 * atomic within this process (a single-node store has one writer).
 */
export class DiskStore implements ObjectStore {
  readonly kind = 'disk' as const;
  readonly conditionalWrites = true;
  readonly location: string;
  readonly #objects: string;
  readonly #tmp: string;
  readonly #sync: boolean;
  /** ifMatch puts of one key, one after another. */
  readonly #locks = new Map<string, Promise<unknown>>();
  /** Sorted entries by directory path, so the pages of one listing do not each read and sort a large directory again. */
  readonly #listings = new LRUCache<string, ListingEntry[]>({ max: LISTINGS_MAX, ttl: LISTING_TTL_MS });

  private constructor(directory: string, sync: boolean) {
    this.location = resolve(directory);
    this.#sync = sync;
    this.#objects = join(this.location, 'objects');
    this.#tmp = join(this.location, 'tmp');
  }

  /**
   * Creates the directories and removes temporary files a crashed process left.
   * `sync: false` skips the fsync before each rename: for a cache whose every
   * read is checked (the disk tier), where a write torn by a power cut is a miss.
   */
  static async open(directory: string, options: { sync?: boolean } = {}): Promise<DiskStore> {
    const store = new DiskStore(directory, options.sync ?? true);
    await translate(`open ${store.location}`, async () => {
      await mkdir(store.#objects, { recursive: true });
      await mkdir(store.#tmp, { recursive: true });
      for (const name of await readdir(store.#tmp)) {
        const path = join(store.#tmp, name);
        const info = await stat(path).catch(() => undefined);
        if (info && Date.now() - info.mtimeMs > STALE_TEMP_MS) await rm(path, { force: true });
      }
    });
    return store;
  }

  #path(key: string): string {
    const parts = key.split('/');
    if (parts.some((part) => part === '' || part === '.' || part === '..' || part.includes('\0'))) throw new TubeError('STORE_ERROR', `key "${key}" cannot be a file path`);
    return join(this.#objects, ...parts);
  }

  async get(key: string, range?: ByteRange, signal?: AbortSignal): Promise<ObjectBody | undefined> {
    const path = this.#path(key);
    const opened = await translate(`get ${key}`, () => open(path, 'r'), true);
    if (!opened) return undefined;
    const file = opened;
    try {
      const { head, offset } = await readHead(file, key);
      const { start, end } = clampRange(head.size, range);
      let closed = false;
      const close = () => {
        if (closed) return;
        closed = true;
        void file.close().catch(() => undefined);
      };
      async function* body(): AsyncGenerator<Buffer> {
        try {
          for (let at = start; at <= end; ) {
            signal?.throwIfAborted();
            const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK, end - at + 1));
            const { bytesRead } = await file.read(buffer, 0, buffer.length, offset + at);
            if (bytesRead === 0) throw new TubeError('STORE_ERROR', `${key} ended at ${at} of ${head.size} bytes`);
            at += bytesRead;
            yield buffer.subarray(0, bytesRead);
          }
        } finally {
          close();
        }
      }
      return { ...head, start, end, body: body(), cancel: close };
    } catch (error) {
      await file.close().catch(() => undefined);
      throw error;
    }
  }

  async head(key: string): Promise<ObjectHead | undefined> {
    const file = await translate(`head ${key}`, () => open(this.#path(key), 'r'), true);
    if (!file) return undefined;
    try {
      return (await readHead(file, key)).head;
    } finally {
      await file.close();
    }
  }

  async put(key: string, body: Buffer | AsyncIterable<Buffer>, options: PutOptions = {}): Promise<{ etag: string }> {
    const path = this.#path(key);
    const etag = `"${randomUUID()}"`;
    const temp = join(this.#tmp, randomUUID());
    const header: Header = { etag, ...(options.contentType ? { contentType: options.contentType } : {}), metadata: { ...options.metadata } };
    try {
      await translate(`put ${key}`, async () => {
        const file = await open(temp, 'wx');
        try {
          // One writev per batch: a slice arrives as 64 KiB pieces and their digests, each of them a write otherwise.
          let batch: Buffer[] = [Buffer.from(`${JSON.stringify(header)}\n`)];
          let batched = 0;
          for await (const chunk of Buffer.isBuffer(body) ? [body] : body) {
            options.signal?.throwIfAborted();
            batch.push(chunk);
            batched += chunk.length;
            if (batched < WRITE_BATCH_BYTES && batch.length < WRITE_BATCH_PIECES) continue;
            await file.writev(batch);
            batch = [];
            batched = 0;
          }
          options.signal?.throwIfAborted();
          if (batch.length) await file.writev(batch);
          if (this.#sync) await file.sync();
        } finally {
          await file.close();
        }
      });
      if (options.ifMatch !== undefined) await this.#locked(key, async () => this.#commit(key, temp, path, options));
      else await this.#commit(key, temp, path, options);
      return { etag };
    } finally {
      await rm(temp, { force: true });
    }
  }

  async #commit(key: string, temp: string, path: string, options: PutOptions): Promise<void> {
    if (options.ifMatch !== undefined) checkConditions(key, (await this.head(key))?.etag, options);
    // Twice: a delete of the last object in a directory may remove it between mkdir and rename.
    for (let attempt = 0; ; attempt++) {
      const created = await translate(`put ${key}`, () => mkdir(dirname(path), { recursive: true }));
      // A new directory changes its parent's entries.
      if (created) this.#listings.delete(dirname(created));
      try {
        if (options.ifNoneMatch === '*') await link(temp, path);
        else await rename(temp, path);
        this.#listings.delete(dirname(path));
        break;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') return checkConditions(key, 'present', options);
        if (code !== 'ENOENT' || attempt > 0) throw storeError(`put ${key}`, error);
      }
    }
  }

  async #locked<T>(key: string, run: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(key) ?? Promise.resolve();
    const current = previous.catch(() => undefined).then(run);
    this.#locks.set(key, current);
    try {
      return await current;
    } finally {
      if (this.#locks.get(key) === current) this.#locks.delete(key);
    }
  }

  async list(options: ListOptions): Promise<ListPage> {
    const after = options.cursor ?? options.startAfter;
    const afterBytes = after === undefined ? undefined : Buffer.from(after);
    const limit = Math.min(options.limit ?? PAGE_MAX, PAGE_MAX);
    const found: ObjectInfo[] = [];
    // The deepest directory the prefix names: "videos/ab" walks objects/videos.
    const base = options.prefix.slice(0, options.prefix.lastIndexOf('/') + 1);
    const walk = async (directory: string, keyPrefix: string): Promise<boolean> => {
      const entries = await this.#sortedEntries(directory, options.prefix);
      // The first entry past the cursor (binary search: a page of a large directory is not a pass over it), or the directory that holds the cursor.
      let from = 0;
      if (afterBytes !== undefined) {
        const past = (at: number) => Buffer.compare(Buffer.from(keyPrefix + entries[at]!.part), afterBytes) > 0;
        let high = entries.length;
        while (from < high) {
          const middle = (from + high) >> 1;
          if (past(middle)) high = middle;
          else from = middle + 1;
        }
        if (from > 0 && entries[from - 1]!.directory && after!.startsWith(keyPrefix + entries[from - 1]!.part)) from--;
      }
      for (let at = from; at < entries.length; at++) {
        const { name, directory: isDirectory, part } = entries[at]!;
        const key = keyPrefix + part;
        if (!key.startsWith(options.prefix)) {
          // Keys under the prefix are one run in key order: past it, nothing more can match.
          if (Buffer.compare(Buffer.from(key), Buffer.from(options.prefix)) > 0) break;
          if (!(isDirectory && options.prefix.startsWith(key))) continue;
        }
        if (isDirectory) {
          if (!(await walk(join(directory, name), key))) return false;
          continue;
        }
        const info = await stat(join(directory, name)).catch(() => undefined);
        if (!info?.isFile()) continue; // deleted while listing
        // One more than the page holds tells whether there is a next page.
        if (found.length === limit) return false;
        found.push({ key, size: Math.max(0, info.size - (await headerLength(join(directory, name)))), lastModified: Math.floor(info.mtimeMs) });
      }
      return true;
    };
    const complete = await walk(join(this.#objects, ...base.split('/').filter(Boolean)), base);
    return { objects: found, cursor: complete ? undefined : found.at(-1)?.key };
  }

  /** The directory's files and subdirectories in key order (S3's: a directory's keys sort as "name/…", so "a-b" before "a/c"). */
  async #sortedEntries(directory: string, prefix: string): Promise<ListingEntry[]> {
    const cached = this.#listings.get(directory);
    if (cached) return cached;
    const entries = await readdir(directory, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return [] as Dirent[];
      throw storeError(`list ${prefix}`, error);
    });
    const sorted = entries
      .filter((entry) => entry.isDirectory() || entry.isFile())
      .map((entry) => {
        const part = entry.name + (entry.isDirectory() ? '/' : '');
        return { name: entry.name, directory: entry.isDirectory(), part, bytes: Buffer.from(part) };
      })
      .sort((a, b) => Buffer.compare(a.bytes, b.bytes))
      .map(({ name, directory: isDirectory, part }) => ({ name, directory: isDirectory, part }));
    this.#listings.set(directory, sorted);
    return sorted;
  }

  async delete(keys: readonly string[]): Promise<{ key: string; message: string }[]> {
    const failed: { key: string; message: string }[] = [];
    for (const key of keys) {
      try {
        const path = this.#path(key);
        await unlink(path).catch((error: NodeJS.ErrnoException) => {
          if (error.code !== 'ENOENT' && error.code !== 'ENOTDIR') throw error;
        });
        this.#listings.delete(dirname(path));
        await this.#pruneDirectories(dirname(path));
      } catch (error) {
        failed.push({ key, message: (error as Error).message });
      }
    }
    return failed;
  }

  /** Removes directories left empty, up to objects/, so the tree does not keep every video ever cached. */
  async #pruneDirectories(directory: string): Promise<void> {
    for (let dir = directory; dir.startsWith(this.#objects + '/'); dir = dirname(dir)) {
      try {
        await rmdir(dir);
        this.#listings.delete(dirname(dir));
      } catch {
        return; // not empty (or already gone)
      }
    }
  }

  /**
   * Every object with its size on disk (header included) and its mtime, from
   * readdir and stat alone: no file is opened (the disk tier's index at start-up).
   */
  async *files(): AsyncGenerator<{ key: string; bytes: number; mtimeMs: number }[]> {
    const directory = await translate(`scan ${this.location}`, () => opendir(this.#objects, { recursive: true, bufferSize: SCAN_BATCH }));
    let batch: string[] = [];
    const statAll = async (paths: string[]) => {
      const stats = await Promise.all(paths.map((path) => stat(path).catch(() => undefined)));
      return paths.flatMap((path, i) => {
        const info = stats[i];
        return info?.isFile() ? [{ key: relative(this.#objects, path).split(sep).join('/'), bytes: info.size, mtimeMs: info.mtimeMs }] : [];
      });
    };
    try {
      for await (const entry of directory) {
        if (!entry.isFile()) continue;
        batch.push(join(entry.parentPath, entry.name));
        if (batch.length === SCAN_BATCH) {
          yield await statAll(batch);
          batch = [];
        }
      }
    } catch (error) {
      throw storeError(`scan ${this.location}`, error);
    }
    if (batch.length) yield await statAll(batch);
  }

  /** Sets the object's mtime to `atMs` (the disk tier's access time); its size on disk, or undefined when it is gone. */
  async touch(key: string, atMs: number): Promise<number | undefined> {
    const path = this.#path(key);
    return translate(`touch ${key}`, async () => {
      await utimes(path, atMs / 1000, atMs / 1000);
      return (await stat(path)).size;
    }, true);
  }

  async ping(): Promise<void> {
    await translate(`ping ${this.location}`, () => access(this.#objects, constants.W_OK | constants.R_OK));
  }

  async close(): Promise<void> {}
}

/** The object's header line and where its bytes start. */
async function readHead(file: FileHandle, key: string): Promise<{ head: ObjectHead; offset: number }> {
  const [info, prefix] = await Promise.all([file.stat(), readPrefix(file)]);
  const newline = prefix.indexOf(0x0a);
  let header: Header;
  try {
    if (newline < 0) throw new Error('no header line');
    header = JSON.parse(prefix.subarray(0, newline).toString('utf8')) as Header;
    if (typeof header.etag !== 'string' || typeof header.metadata !== 'object') throw new Error('not a header');
  } catch (error) {
    throw new TubeError('STORE_ERROR', `${key} is not an object file: ${(error as Error).message}`);
  }
  const offset = newline + 1;
  return {
    offset,
    head: { key, size: info.size - offset, lastModified: Math.floor(info.mtimeMs), etag: header.etag, contentType: header.contentType, metadata: header.metadata },
  };
}

/** The start of the file, long enough to hold the header line (usually the first 4 KiB do). */
async function readPrefix(file: FileHandle): Promise<Buffer> {
  for (let length = 4096; ; length = HEADER_MAX) {
    const buffer = Buffer.allocUnsafe(length);
    const { bytesRead } = await file.read(buffer, 0, length, 0);
    const prefix = buffer.subarray(0, bytesRead);
    if (prefix.includes(0x0a) || bytesRead < length || length === HEADER_MAX) return prefix;
  }
}

async function headerLength(path: string): Promise<number> {
  const file = await open(path, 'r').catch(() => undefined);
  if (!file) return 0;
  try {
    const prefix = await readPrefix(file);
    return prefix.indexOf(0x0a) + 1;
  } finally {
    await file.close();
  }
}

const storeError = (what: string, error: unknown) => new TubeError('STORE_ERROR', `disk ${what}: ${(error as Error).message}`, { cause: error });

/** File operations: ENOENT/ENOTDIR is a miss where allowed; our own errors and aborts pass; anything else is a STORE_ERROR. */
const translate = errorBoundary(
  (error) => ['ENOENT', 'ENOTDIR'].includes((error as NodeJS.ErrnoException).code ?? ''),
  (what, error) => ((error as Error).name === 'AbortError' || error instanceof TubeError ? (error as Error) : storeError(what, error)),
);
