import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';

/** sha256 of a byte sequence, as lowercase hex (64 chars) and as base64 (the S3 `ChecksumSHA256` / Lambda `CodeSha256` form). */
export interface Sha256Digest {
  hex: string;
  base64: string;
  /** number of bytes hashed */
  size: number;
}

/** sha256 of an in-memory buffer. */
export function sha256Bytes(bytes: Uint8Array | string): Sha256Digest {
  const buf = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  const digest = createHash('sha256').update(buf).digest();
  return { hex: digest.toString('hex'), base64: digest.toString('base64'), size: buf.length };
}

/**
 * Streams a readable through sha256 (constant memory).
 * @throws whatever the stream emits (e.g. ENOENT for a missing file)
 */
export async function sha256Stream(stream: Readable | AsyncIterable<Uint8Array>): Promise<Sha256Digest> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Uint8Array>) {
    hash.update(chunk);
    size += chunk.length;
  }
  const digest = hash.digest();
  return { hex: digest.toString('hex'), base64: digest.toString('base64'), size };
}

/** sha256 of a file on disk, streamed (constant memory). @throws ENOENT/EACCES from fs */
export function sha256File(path: string): Promise<Sha256Digest> {
  return sha256Stream(createReadStream(path));
}

/** Converts a hex sha256 (64 chars) to base64 (44 chars), e.g. for S3 `ChecksumSHA256`. @throws Error on malformed hex */
export function sha256HexToBase64(hex: string): string {
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`not a sha256 hex digest: "${hex}"`);
  return Buffer.from(hex, 'hex').toString('base64');
}

/** Converts a base64 sha256 (S3 `ChecksumSHA256`, Lambda `CodeSha256`) to lowercase hex. */
export function sha256Base64ToHex(b64: string): string {
  return Buffer.from(b64, 'base64').toString('hex');
}
