/**
 * Minimal typings for s3rver 3.x (CommonJS, ships no types): only what
 * src/cache/embedded-s3.ts uses. `module.exports = S3rver`, so an ESM default
 * import yields the class.
 */
declare module 's3rver' {
  import type { Server } from 'node:http';
  import type { AddressInfo } from 'node:net';

  namespace S3rver {
    interface BucketConfig {
      name: string;
      /** CORS or website configuration XML documents. */
      configs?: Array<string | Buffer>;
    }

    interface Options {
      address?: string;
      port?: number;
      silent?: boolean;
      serviceEndpoint?: string;
      directory?: string;
      resetOnClose?: boolean;
      allowMismatchedSignatures?: boolean;
      vhostBuckets?: boolean;
      configureBuckets?: BucketConfig[];
      key?: string | Buffer;
      cert?: string | Buffer;
    }
  }

  class S3rver {
    constructor(options?: S3rver.Options);
    /** The listening server; set by run(). */
    httpServer?: Server;
    /** Creates `configureBuckets`, then listens; resolves to the bound address. */
    run(): Promise<AddressInfo>;
    /** server.close(): stops accepting; resolves when every connection has ended. */
    close(): Promise<void>;
    reset(): void;
  }

  export = S3rver;
}
