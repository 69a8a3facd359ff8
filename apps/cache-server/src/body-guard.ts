import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { createGunzip, type Gunzip } from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';
import { ArchivePolicy, archiveKindOf } from '@buildonce/artifact';
import { BodyIncompleteError, BodyRejectedError, BodyTooLargeError } from './errors';

const GZIP_MAGIC = [0x1f, 0x8b] as const;

export interface BodyGuardOptions {
  /** largest accepted body, bytes (BUILDONCE_CACHE_MAX_BYTES) */
  maxBytes: number;
  /** the request's Content-Length, bytes; fewer bytes is BodyIncompleteError, more is BodyTooLargeError */
  expectedBytes: number;
  /**
   * Decompressed/compressed byte ratio above which the body is refused (bad-archive), checked as it inflates (the
   * same rule as tar's Parser option). Default: no limit.
   * Deflate cannot exceed ~1032:1, so tar's own default (1000) only refuses near-all-zero outputs, which are
   * legitimate build outputs (sparse files); the guard never extracts, so a "bomb" costs CPU, not memory, and
   * only read-write tokens can send one.
   */
  maxDecompressionRatio?: number;
}

/** What the guard measured once the body ended cleanly. */
export interface GuardedBody {
  /** bytes */
  size: number;
  /** hex sha256 of the exact bytes passed through */
  sha256: string;
  /** tar entries seen (files, directories, links) */
  entries: number;
}

/** Output chunk of the gunzip stream, bytes: one thread-pool round trip per socket chunk (64 KiB) of stored blocks. */
const INFLATE_CHUNK = 128 * 1024;

/**
 * Pass-through transform that validates a PUT body while it streams to storage (no buffering): counts bytes
 * against the limit and Content-Length, hashes them (sha256), checks the gzip magic, inflates them with node's
 * zlib stream (RFC 1952; the inflate runs on the libuv thread pool, off the event loop, with backpressure) and
 * feeds the tar to node-tar's `Parser` (strict mode, uncompressed input) that checks every entry with
 * the `cache` profile of `ArchivePolicy` (`@buildonce/artifact`). It fails the stream with BodyRejectedError / BodyTooLargeError / BodyIncompleteError as soon as
 * a problem is seen, and holds back its end until the archive has been fully inflated and parsed, so storage
 * never commits a body that did not validate. A gzip whose content is gzip again is refused (Nx inflates once;
 * the Parser is told the tar is uncompressed: zstd and brotli sniffing are off). node-tar's own gzip path would
 * inflate synchronously on the event loop and copy every output chunk (minizlib): ~1 ms per MiB of main-thread
 * time, the largest PUT cost after sha256. After `finish`, `result()` gives size and sha256.
 */
export class BodyGuard extends Transform {
  private bytes = 0;
  private inflated = 0;
  private entries = 0;
  private readonly hash: Hash = createHash('sha256');
  private readonly gunzip: Gunzip;
  private readonly parser: Parser;
  private readonly parserDone: Promise<void>;
  private readonly badArchive: (e: Error) => void;
  private head = Buffer.alloc(0);
  /** first decompressed bytes, until the tar's first 2 bytes are known (tar's Parser would inflate gzip again) */
  private tarHead: Buffer | undefined = Buffer.alloc(0);
  private readonly policy = new ArchivePolicy('cache');
  private readonly maxRatio: number;
  private sha256?: string;
  /** the first problem found; set even when a consumer wraps or swallows the stream error */
  failure?: Error;

  constructor(private readonly opts: BodyGuardOptions) {
    super();
    this.maxRatio = opts.maxDecompressionRatio ?? Number.POSITIVE_INFINITY;
    this.parser = new Parser({
      strict: true,
      zstd: false,
      onReadEntry: (entry: ReadEntry) => {
        this.entries++;
        const reason = this.policy.check({ path: entry.path, kind: archiveKindOf(entry.type), linkpath: entry.linkpath });
        if (reason) this.abortWith(new BodyRejectedError('unsafe-entry', `unsafe tar entry: ${reason}`));
        entry.resume();
      },
    });
    let bad: (e: Error) => void = () => undefined;
    this.parserDone = new Promise<void>((resolve, reject) => {
      bad = (e: Error) => {
        this.abortWith(new BodyRejectedError('bad-archive', `body is not a valid gzip-compressed tar: ${e.message}`));
        reject(this.failure);
      };
      this.parser.on('error', bad);
      this.parser.on('end', () => resolve());
    });
    this.badArchive = bad;
    this.parserDone.catch(() => undefined);
    this.gunzip = this.inflate(INFLATE_CHUNK);
  }

  /** A gunzip stream (RFC 1952, thread pool) whose output feeds the tar parser. @param chunkSize output chunk, bytes */
  private inflate(chunkSize: number): Gunzip {
    const gunzip = createGunzip({ chunkSize });
    gunzip.on('data', (c: Buffer) => this.consume(c));
    gunzip.on('end', () => this.parser.end());
    gunzip.on('error', this.badArchive);
    return gunzip;
  }

  /** Decompressed bytes: checked against the ratio and for a second compression layer, then parsed. */
  private consume(chunk: Buffer): void {
    if (this.failure) return;
    this.inflated += chunk.length;
    if (this.inflated > this.maxRatio * this.bytes) {
      return this.abortWith(new BodyRejectedError('bad-archive', `body is not a valid gzip-compressed tar: decompression ratio above ${this.maxRatio}`));
    }
    if (this.tarHead) {
      const t = (this.tarHead = Buffer.concat([this.tarHead, chunk.subarray(0, GZIP_MAGIC.length - this.tarHead.length)]));
      if (t.length >= GZIP_MAGIC.length) {
        if (t[0] === GZIP_MAGIC[0] && t[1] === GZIP_MAGIC[1]) {
          return this.abortWith(new BodyRejectedError('bad-archive', 'body is not a valid gzip-compressed tar: its content is gzip-compressed again'));
        }
        this.tarHead = undefined;
      }
    }
    this.parser.write(chunk);
  }

  private fail(e: Error): void {
    this.failure ??= e;
  }

  /** Records the failure and fails the stream on the next tick (callers may be inside the parser's own callbacks). */
  private abortWith(e: Error): void {
    this.fail(e);
    process.nextTick(() => {
      if (!this.destroyed) this.destroy(this.failure);
    });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.failure) return cb(this.failure);
    this.bytes += chunk.length;
    const limit = Math.min(this.opts.maxBytes, this.opts.expectedBytes);
    if (this.bytes > limit) {
      this.fail(new BodyTooLargeError(limit, this.bytes));
      return cb(this.failure);
    }
    if (this.head.length < GZIP_MAGIC.length) {
      this.head = Buffer.concat([this.head, chunk.subarray(0, GZIP_MAGIC.length - this.head.length)]);
      if (this.head.length >= GZIP_MAGIC.length && (this.head[0] !== GZIP_MAGIC[0] || this.head[1] !== GZIP_MAGIC[1])) {
        this.fail(new BodyRejectedError('not-gzip', 'body is not gzip-compressed (expected a gzip-compressed tar)'));
        return cb(this.failure);
      }
    }
    this.hash.update(chunk);
    if (this.gunzip.write(chunk)) return cb(null, chunk);
    // the inflate lags (thread pool busy): hold this chunk until it drains, so memory stays bounded
    this.inflateDrained().then(() => (this.failure ? cb(this.failure) : cb(null, chunk)));
  }

  private inflateDrained(): Promise<void> {
    const gunzip = this.gunzip;
    return new Promise((resolve) => {
      const go = () => {
        gunzip.off('drain', go);
        gunzip.off('close', go);
        resolve();
      };
      gunzip.on('drain', go);
      gunzip.on('close', go);
    });
  }

  override _flush(cb: TransformCallback): void {
    if (this.failure) return cb(this.failure);
    if (this.bytes < this.opts.expectedBytes) {
      this.fail(new BodyIncompleteError(this.opts.expectedBytes, this.bytes));
      return cb(this.failure);
    }
    if (this.head.length < GZIP_MAGIC.length) {
      this.fail(new BodyRejectedError('not-gzip', 'body is not gzip-compressed (expected a gzip-compressed tar)'));
      return cb(this.failure);
    }
    this.gunzip.end();
    this.parserDone.then(
      () => {
        if (this.failure) return cb(this.failure);
        const late = this.policy.finish();
        if (late) {
          this.fail(new BodyRejectedError('unsafe-entry', `unsafe tar entry: ${late}`));
          return cb(this.failure);
        }
        this.sha256 = this.hash.digest('hex');
        cb();
      },
      (e: Error) => cb(this.failure ?? e),
    );
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (err) this.fail(err);
    if (!this.sha256) {
      this.gunzip.destroy();
      // a fresh error: tar's abort() decorates the error object it is given
      this.parser.abort(new Error(err ? err.message : 'body stream destroyed'));
    }
    cb(err);
  }

  /** Size and sha256 of the body; only after the stream finished without error. */
  result(): GuardedBody {
    if (!this.sha256) throw new Error('BodyGuard.result() called before the body was fully validated');
    return { size: this.bytes, sha256: this.sha256, entries: this.entries };
  }
}
