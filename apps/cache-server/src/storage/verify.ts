import { createHash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';

/** Entries up to this size (bytes) are read and verified in memory before sending (GET); larger ones stream. */
export const IN_MEMORY_VERIFY_MAX = 2 * 1024 * 1024;

/** Pass-through that hashes (sha256) and counts the bytes flowing through it. */
export class HashTap extends Transform {
  private readonly hash = createHash('sha256');
  bytes = 0;

  constructor(private readonly maxBytes = Number.POSITIVE_INFINITY) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) return cb(new Error(`more than ${this.maxBytes} bytes`));
    this.hash.update(chunk);
    cb(null, chunk);
  }

  /** Hex sha256 of everything that passed; call once, after the stream ended. */
  digestHex(): string {
    return this.hash.digest('hex');
  }
}

/**
 * Reads a stream to its end, hashing it, without keeping the bytes.
 * @returns size in bytes and hex sha256
 */
export async function hashStream(stream: Readable): Promise<{ size: number; sha256: string }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    const b = chunk as Buffer;
    size += b.length;
    h.update(b);
  }
  return { size, sha256: h.digest('hex') };
}

/** A stored blob's bytes differ from its record (found while streaming it). */
export class CorruptBlobError extends Error {
  override name = 'CorruptBlobError';
}

/**
 * Pass-through that verifies a blob WHILE it is sent: it hashes every chunk and holds back the last one until
 * the byte count and sha256 match the record, so a client never receives a complete corrupt body; on a
 * mismatch it fails with CorruptBlobError (the HTTP response is then cut short: the client sees an error).
 * Memory: one chunk.
 */
export class VerifyingStream extends Transform {
  private readonly hash = createHash('sha256');
  private bytes = 0;
  private held?: Buffer;

  constructor(
    private readonly expected: { size: number; sha256: string },
    private readonly what: string,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.expected.size) return cb(new CorruptBlobError(`${this.what} is longer than ${this.expected.size} bytes`));
    this.hash.update(chunk);
    const out = this.held;
    this.held = chunk;
    cb(null, out);
  }

  override _flush(cb: TransformCallback): void {
    const sha = this.hash.digest('hex');
    if (this.bytes !== this.expected.size) return cb(new CorruptBlobError(`${this.what} has ${this.bytes} bytes, record says ${this.expected.size}`));
    if (sha !== this.expected.sha256) return cb(new CorruptBlobError(`${this.what} has sha256 ${sha}, record says ${this.expected.sha256}`));
    cb(null, this.held);
  }
}
