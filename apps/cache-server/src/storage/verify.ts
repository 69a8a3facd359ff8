import { createHash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';

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
