import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Metrics } from '../metrics.js';
import { sliceBounds, type Manifest } from './manifest.js';
import { openSlice } from './slice-codec.js';

/** How long a holder has to answer: it has the slice in memory or in flight, or it has not; nothing to wait for. */
const ANSWER_MS = 1_000;

/** tubecache_peer_reads_total's outcomes: streamed from the holder, not there (404), not reachable or refused. */
type PeerOutcome = 'streamed' | 'absent' | 'failed';

/**
 * Reads a slice from the node holding its lease (src/http/peer.ts) while that
 * node fetches it. Every chunk is checked against the digest that follows it,
 * as for a slice read from the store, so a broken holder or network can cut a
 * read short but never change a byte. Anything short of an answer is `undefined`:
 * the waiting node goes on polling the store, as without PEER_URL.
 */
export class PeerClient {
  readonly #token: string;
  /** A holder that sends nothing for as long as its lease lives is taken for gone. */
  readonly #idleMs: number;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #agents = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) };

  constructor(options: { config: Config; metrics: Metrics; logger: Logger }) {
    this.#token = options.config.PEER_TOKEN;
    this.#idleMs = options.config.LEASE_TTL;
    this.#metrics = options.metrics;
    this.#log = options.logger;
  }

  /** Slice `index` of `manifest`'s version from `holder` (its PEER_URL), checked chunk by chunk; undefined when the holder has none to give. */
  async open(holder: string, manifest: Manifest, index: number, signal: AbortSignal): Promise<AsyncGenerator<Buffer> | undefined> {
    const url = `${holder}/peer/slices/${manifest.id}/${manifest.format}/${index}?etag=${encodeURIComponent(manifest.etag)}`;
    let response: IncomingMessage;
    try {
      response = await this.#get(url, signal);
    } catch (error) {
      if (signal.aborted) throw error;
      return this.#none('failed', { holder, err: error });
    }
    if (response.statusCode !== 200) {
      response.resume();
      return response.statusCode === 404 ? this.#none('absent') : this.#none('failed', { holder, status: response.statusCode });
    }
    let slice: AsyncGenerator<Buffer> | undefined;
    try {
      slice = await openSlice(response, { etag: manifest.etag, length: sliceBounds(manifest, index).length });
    } catch (error) {
      // Cut before the header was whole.
      response.destroy();
      if (signal.aborted) throw error;
      return this.#none('failed', { holder, err: error });
    }
    if (!slice) {
      response.destroy();
      return this.#none('failed', { holder, reason: 'not a slice of this version' });
    }
    this.#metrics.peerReads.inc({ outcome: 'streamed' });
    return slice;
  }

  close(): void {
    this.#agents.http.destroy();
    this.#agents.https.destroy();
  }

  #none(outcome: PeerOutcome, failure?: Record<string, unknown>): undefined {
    this.#metrics.peerReads.inc({ outcome });
    if (failure) this.#log.warn(failure, 'could not stream a slice from its lease holder; waiting for its upload');
    return undefined;
  }

  /** The response's headers within ANSWER_MS, then a socket silent for the idle deadline ends the body with an error. */
  #get(url: string, signal: AbortSignal): Promise<IncomingMessage> {
    const https = url.startsWith('https:');
    return new Promise((resolve, reject) => {
      const request = (https ? httpsRequest : httpRequest)(url, { agent: https ? this.#agents.https : this.#agents.http, headers: { authorization: `Bearer ${this.#token}` }, signal }, (response) => {
        request.setTimeout(this.#idleMs);
        resolve(response);
      });
      request.setTimeout(ANSWER_MS, () => request.destroy(new Error('the holder went silent')));
      request.on('error', reject);
      request.end();
    });
  }
}
