import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { isTubeError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import type { StoreTier } from './store-tier.js';
import type { ObjectHead } from './store.js';

/** How often a waiting node looks for the slice behind a lease: the most it adds to a follower's first byte. */
const POLL_MS = 20;
/** How often it also looks at the lease itself (released, lapsed, or done elsewhere): lapses take LEASE_TTL, so this need not be quick. */
const LEASE_LOOK_MS = 200;
/** How long a deferring claim (ClaimOptions.defer) leaves a missing lease to other nodes: a node already fetching the video claims its next slice within a few ms. */
const DEFER_MS = 100;
/** After a probe the store did not answer, claims go without leases this long before the next probe. */
const PROBE_RETRY_MS = 5_000;

/** tubecache_leases_total's outcomes: the lease created, taken over, another node's bytes read from the store or streamed from the holder, LEASE_WAIT spent, S3 failing. */
type LeaseOutcome = 'held' | 'taken-over' | 'followed' | 'streamed' | 'gave-up' | 'error';

/** What a lease object says (its metadata; S3 lower-cases the names). */
type LeaseState = 'held' | 'done' | 'released';

/** Where a finished slice was put: `shared` beyond the head (pruned after SHARED_TTL), else with the head. */
export interface Done {
  readonly shared: boolean;
}

/**
 * The outcome of a claim: `lease` when this node is to fetch (and share) the
 * bytes, `found` when another node's are there, neither when this node is on
 * its own (no conditional writes, the store failing, or LEASE_WAIT spent).
 */
export interface Claim<T> {
  readonly lease?: Lease;
  readonly found?: T;
}

/** How a claim looks for what its lease guards (besides `found`), and what it may start from. */
export interface ClaimOptions<T> {
  readonly signal?: AbortSignal;
  /** This claim's first write, begun before (`LeaseBoard.begin`). */
  readonly early?: EarlyLease;
  /**
   * The bytes from the holder itself while it fetches them, asked at each look at a lease
   * held by a node that names its address (PEER_URL); undefined when it has nothing to give.
   */
  readonly fromHolder?: (holder: string) => Promise<T | undefined>;
  /**
   * Leaves a lease nobody holds yet to the other nodes for DEFER_MS before creating it: for a
   * node that would have to run yt-dlp to fetch, while another node that has the URL is
   * about to claim the slice (its read-ahead), racing to be first would cost a yt-dlp run.
   */
  readonly defer?: boolean;
}

/** A claim's first write, started before the claim (`LeaseBoard.begin`). */
export interface EarlyLease {
  readonly key: string;
  /** The lease's etag when this node created it (undefined when another node holds it), and when the store answered. */
  readonly write: Promise<{ etag: string | undefined; at: number }>;
}

/**
 * Nodes sharing a bucket fetch each slice from the origin once between them.
 * Before going to the origin a node creates a small lease object for the
 * slice with a conditional put (If-None-Match: *); the winner fetches, uploads
 * and marks the lease done, renewing it meanwhile; the others poll the lease
 * and the slice side by side and read the slice as soon as its upload is
 * complete (a put is visible whole or not at all), or where the mark says. A lease lapses LEASE_TTL after its
 * last write, judged on the store's clock (the object's Last-Modified against
 * the Date of the answer), never on ours; a lapsed or released lease is taken
 * over with a put conditional on the etag read (If-Match), so of several
 * nodes taking over one wins. The README's design section lists the failure cases.
 */
export class LeaseBoard {
  /** Names this process in the leases it holds (several run in one process in tests). */
  readonly node = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  readonly #tier: StoreTier;
  readonly #ttlMs: number;
  readonly #waitMs: number;
  /** Named in the leases this node holds, so that a waiting node can stream the slice from it (PEER_URL). */
  readonly #peerUrl: string;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #held = new Set<Lease>();
  #probe: Promise<boolean> | undefined;
  #probeAfter = 0;
  #mode: 'unknown' | 'leases' | 'per-node' = 'unknown';

  constructor(options: { tier: StoreTier; config: Config; metrics: Metrics; logger: Logger }) {
    this.#tier = options.tier;
    this.#ttlMs = options.config.LEASE_TTL;
    this.#waitMs = options.config.LEASE_WAIT;
    this.#peerUrl = options.config.PEER_URL;
    this.#log = options.logger;
    this.#metrics = options.metrics;
  }

  /** 'leases' once the probe found conditional writes, 'per-node' when it found none, 'unknown' until it could ask. */
  get mode(): 'unknown' | 'leases' | 'per-node' {
    return this.#mode;
  }

  /**
   * Whether the store honours conditional writes, asked once (and again after
   * a store failure kept it from answering); the answer is logged once.
   */
  probe(): Promise<boolean> {
    if (!this.#probe && Date.now() < this.#probeAfter) return Promise.resolve(false);
    this.#probe ??= probeConditionalWrites(this.#tier).then(
      (ok) => {
        this.#mode = ok ? 'leases' : 'per-node';
        if (ok) this.#log.info({ store: this.#tier.store.location }, 'conditional writes: nodes on this store share origin fetches through leases');
        else if (this.#tier.store.kind === 's3') this.#log.warn({ store: this.#tier.store.location }, 'the store has no conditional writes: each node fetches from the origin on its own');
        return ok;
      },
      (error: unknown) => {
        this.#probe = undefined;
        this.#probeAfter = Date.now() + PROBE_RETRY_MS;
        this.#log.warn({ err: error }, 'conditional-write probe failed; nodes fetch on their own until the store answers');
        return false;
      },
    );
    return this.#probe;
  }

  /**
   * Starts a claim's first write now, beside other work (a new video's
   * manifest GET), so that the claim that may follow does not wait a round
   * trip for it: pass it to `claim`, or to `drop` when no claim follows.
   * Undefined until the probe has found conditional writes.
   */
  begin(key: string): EarlyLease | undefined {
    if (this.#mode !== 'leases' || !this.#tier.available) return undefined;
    const write = this.#write(key, 'held', { ifNoneMatch: '*' }).then((etag) => ({ etag, at: Date.now() }));
    // Its failure is the claim's to handle, or nobody's.
    write.catch(() => undefined);
    return { key, write };
  }

  /** An early write no claim needed (the manifest was there): a lease it created is released at once, so nobody waits for it to lapse. */
  async drop(early: EarlyLease): Promise<void> {
    const etag = (await early.write.catch(() => undefined))?.etag;
    if (!etag) return;
    await this.#write(early.key, 'released', { ifMatch: etag }).catch((error: unknown) => this.#log.warn({ key: early.key, err: error }, 'lease write failed'));
  }

  /**
   * Claims the lease at `key`. `found(done)` looks for what the lease
   * guards: on every poll beside the lease's head (`done` undefined: where
   * the holder is expected to put it), and again where a done mark says it
   * is. Store failures make this node fetch on its own rather than fail.
   */
  async claim<T>(key: string, found: (done: Done | undefined) => Promise<T | undefined>, options: ClaimOptions<T> = {}): Promise<Claim<T>> {
    const { signal, early } = options;
    if (!this.#tier.available || !(await this.probe())) {
      if (early) void this.drop(early);
      return {};
    }
    try {
      const { claim, outcome } = await this.#claim(key, found, options);
      this.#metrics.leases.inc({ outcome });
      return claim;
    } catch (error) {
      if (signal?.aborted || !isTubeError(error, 'STORE_ERROR')) throw error;
      this.#metrics.leases.inc({ outcome: 'error' });
      this.#log.warn({ key, err: error }, 'lease not claimed; fetching on this node');
      return {};
    }
  }

  async #claim<T>(key: string, found: (done: Done | undefined) => Promise<T | undefined>, options: ClaimOptions<T>): Promise<{ claim: Claim<T>; outcome: LeaseOutcome }> {
    const { signal, early, fromHolder } = options;
    const deadline = Date.now() + this.#waitMs;
    const deferUntil = options.defer && !early ? Date.now() + DEFER_MS : 0;
    let outcome: LeaseOutcome = 'held';
    let etag = early ? await this.#current(early) : deferUntil ? undefined : await this.#write(key, 'held', { ifNoneMatch: '*' });
    let leaseLookAt = 0;
    while (!etag) {
      signal?.throwIfAborted();
      // What the lease guards on every poll, the lease itself beside it now and then (every poll while deferring):
      // bytes the holder has put are read without waiting for its done mark.
      const deferring = Date.now() < deferUntil;
      const looking = deferring || Date.now() >= leaseLookAt;
      const [head, polled] = await Promise.allSettled([looking ? this.#tier.headObject(key) : undefined, found(undefined)]);
      if (polled.status === 'rejected') throw polled.reason;
      if (polled.value !== undefined) return { claim: { found: polled.value }, outcome: 'followed' };
      if (head.status === 'rejected') throw head.reason;
      if (!looking) {
        await sleep(POLL_MS, undefined, { signal });
        continue;
      }
      leaseLookAt = deferring ? deferUntil : Date.now() + LEASE_LOOK_MS;
      const lease = head.value;
      if (!lease) {
        if (deferring) await sleep(POLL_MS, undefined, { signal });
        else etag = await this.#write(key, 'held', { ifNoneMatch: '*' });
        continue;
      }
      const state = lease.metadata.state as LeaseState | undefined;
      // Never this node itself: a lease it is about to release (an aborted fetch) names it until the release lands.
      const holder = lease.metadata.node === this.node ? undefined : lease.metadata.peer;
      // Done since the look above, or put where this node did not expect it.
      if (state === 'done') {
        const value = await found({ shared: lease.metadata.where === 'shared' });
        if (value !== undefined) return { claim: { found: value }, outcome: 'followed' };
      }
      // Held: from the holder itself, as the bytes arrive.
      if (state === 'held' && holder && fromHolder && !lapsed(lease)) {
        const value = await fromHolder(holder);
        if (value !== undefined) return { claim: { found: value }, outcome: 'streamed' };
      }
      // Done but gone (pruned, or of a dropped version), released, or lapsed: take it over; of several nodes, one wins.
      if (state === 'done' || lapsed(lease)) {
        etag = await this.#write(key, 'held', { ifMatch: lease.etag });
        if (etag) {
          outcome = 'taken-over';
          this.#log.info({ key, from: lease.metadata.node, state }, 'lease taken over');
        }
        continue;
      }
      if (Date.now() > deadline) {
        this.#log.warn({ key, holder: lease.metadata.node, waitedMs: this.#waitMs }, 'waited LEASE_WAIT for another node; fetching on this node');
        return { claim: {}, outcome: 'gave-up' };
      }
      await sleep(POLL_MS, undefined, { signal });
    }
    const lease = new Lease(this, key, etag);
    this.#held.add(lease);
    return { claim: { lease }, outcome };
  }

  /**
   * An early write's etag, renewed first when a renewal is already due (a slow manifest GET ran in between):
   * a lease this node held unrenewed for that long could not otherwise be trusted not to lapse before
   * its first renewal. Undefined when another node holds the lease, or took it over meanwhile.
   */
  async #current(early: EarlyLease): Promise<string | undefined> {
    const { etag, at } = await early.write;
    if (!etag || Date.now() - at < this.renewEveryMs) return etag;
    return this.#write(early.key, 'held', { ifMatch: etag });
  }

  /** Puts the lease object; its etag, or undefined when the condition failed (another node got there first). */
  async #write(key: string, state: LeaseState, condition: { ifNoneMatch?: '*'; ifMatch?: string }, where?: 'slices' | 'shared'): Promise<string | undefined> {
    const metadata = { node: this.node, state, ttl: String(state === 'held' ? this.#ttlMs : 0), ...(where && { where }), ...(state === 'held' && this.#peerUrl && { peer: this.#peerUrl }) };
    try {
      // S3's ETag is the body's MD5: a body of its own per write, so that an If-Match on the ETag read means "nobody wrote since".
      // With the same body twice (this node taking back a lease it released), two nodes' takeovers could both match.
      const body = Buffer.from(`${this.node} ${randomBytes(6).toString('hex')}`);
      return await this.#tier.putObject(key, body, { contentType: 'text/plain', metadata, ...condition });
    } catch (error) {
      if (isTubeError(error, 'PRECONDITION_FAILED')) return undefined;
      throw error;
    }
  }

  /** For Lease: one write of a held lease's object; the new etag, or undefined when another node took the lease over. */
  async rewrite(lease: Lease, etag: string, state: LeaseState, where?: 'slices' | 'shared'): Promise<string | undefined> {
    const next = await this.#write(lease.key, state, { ifMatch: etag }, where);
    if (state !== 'held' || !next) this.#held.delete(lease);
    return next;
  }

  get renewEveryMs(): number {
    // Three renewals per lifetime: one lost or slow write does not let the lease lapse.
    return Math.floor(this.#ttlMs / 3);
  }

  get log(): Logger {
    return this.#log;
  }

  /** Stops renewing (shutdown): what this node holds lapses within LEASE_TTL and is taken over. */
  close(): void {
    for (const lease of this.#held) lease.stop();
    this.#held.clear();
  }
}

/**
 * A lease this node holds: renewed until the bytes are shared (marked done) or
 * the fetch failed (released, so a waiting node takes over at once). Writes
 * go one after another, each conditional on the etag of the one before; a
 * refused one means another node took the lease over, and this one stops.
 */
export class Lease {
  #etag: string;
  #state: 'held' | 'sharing' | 'settled' = 'held';
  #writes: Promise<unknown> = Promise.resolve();
  readonly #timer: NodeJS.Timeout;

  constructor(readonly board: LeaseBoard, readonly key: string, etag: string) {
    this.#etag = etag;
    this.#timer = setInterval(() => void this.#rewrite('held'), board.renewEveryMs).unref();
  }

  /**
   * Uploads the bytes with `upload`, then marks the lease done; a failed
   * upload releases it and rethrows. A lease lost meanwhile is not shared
   * (false): the node that took it over uploads the slice.
   */
  async share(upload: () => Promise<void>, shared: boolean): Promise<boolean> {
    if (this.#state !== 'held') return false;
    this.#state = 'sharing';
    try {
      await upload();
    } catch (error) {
      await this.#settle('released');
      throw error;
    }
    await this.#settle('done', shared ? 'shared' : 'slices');
    return true;
  }

  /** Gives the lease up (the fetch failed or was abandoned); nothing once sharing began. */
  async release(): Promise<void> {
    if (this.#state === 'held') await this.#settle('released');
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#state = 'settled';
  }

  async #settle(state: 'done' | 'released', where?: 'slices' | 'shared'): Promise<void> {
    clearInterval(this.#timer);
    this.#state = 'settled';
    await this.#rewrite(state, where);
  }

  #rewrite(state: LeaseState, where?: 'slices' | 'shared'): Promise<unknown> {
    this.#writes = this.#writes.then(async () => {
      if (!this.#etag) return;
      try {
        const etag = await this.board.rewrite(this, this.#etag, state, where);
        if (etag) this.#etag = etag;
        else {
          this.board.log.warn({ key: this.key, state }, 'lease was taken over by another node');
          this.#etag = '';
          this.stop();
        }
      } catch (error) {
        // A renewal may fail once; two more come before the lease lapses.
        this.board.log.warn({ key: this.key, state, err: error }, 'lease write failed');
      }
    });
    return this.#writes;
  }
}

/** Whether a lease's holder has let it lapse: its last write is older than its ttl on the store's clock. */
function lapsed(lease: ObjectHead): boolean {
  const ttl = Number(lease.metadata.ttl);
  const now = lease.serverTime ?? Date.now();
  return !(ttl > 0) || now - lease.lastModified >= ttl;
}

/**
 * Creates a probe object twice with If-None-Match: * (a store that ignores the
 * header takes both; one that refuses the header answers the first with an
 * error status), then deletes it; throws when the store does not answer.
 * Only S3 is shared between nodes: the disk store's If-Match holds within one
 * process, and a store without `conditionalWrites` is not asked.
 */
export async function probeConditionalWrites(tier: StoreTier): Promise<boolean> {
  if (!tier.store.conditionalWrites || tier.store.kind !== 's3') return false;
  const key = `${tier.keys.leasesRoot}.probe-${randomBytes(6).toString('hex')}`;
  // Not through the tier's accounting: a store that refuses the header is not failing.
  const put = () => tier.store.put(key, Buffer.from('probe'), { contentType: 'text/plain', ifNoneMatch: '*' });
  try {
    await put();
  } catch (error) {
    if (answered(error)) return false;
    throw error;
  }
  try {
    await put();
    return false;
  } catch (error) {
    if (isTubeError(error, 'PRECONDITION_FAILED')) return true;
    throw error;
  } finally {
    await tier.store.delete([key]).catch(() => undefined);
  }
}

/** Whether a failed request got an HTTP answer (a refusal), rather than none (S3 down). */
const answered = (error: unknown): boolean => typeof (error as { cause?: { $metadata?: { httpStatusCode?: number } } }).cause?.$metadata?.httpStatusCode === 'number';
