import type { Readable } from 'node:stream';

/** A storage backend failed (I/O, credentials, network). Answered as a miss on GET and 503 on PUT. */
export class StorageError extends Error {
  override name = 'StorageError';
}

/** Result of reading a blob whose size and sha256 are known from its record. */
export type VerifiedRead =
  /** the bytes matched; `stream` yields exactly them (constant memory) */
  | { status: 'ok'; stream: Readable; size: number }
  | { status: 'missing' }
  /** the stored bytes differ from the record: never served */
  | { status: 'corrupt'; reason: string };

/**
 * The object operations the cache needs, implemented by the directory and S3 backends with the same semantics.
 * Keys are relative `/`-separated paths (built by `recordKey`/`blobKey` in cache-store.ts). Records are small JSON objects written create-only;
 * blobs are written under unique keys and become reachable only through a record.
 */
export interface CacheBackend {
  /** `file:///…` or `s3://bucket/prefix`, for logs */
  readonly url: string;
  /** Fails fast with StorageError when the store cannot be used (directory not writable, bucket missing). */
  check(): Promise<void>;
  /**
   * Streams `body` into the blob `key` (a fresh unique key). Resolves once the bytes are durable; rejects with
   * the body's own error when the body stream fails (the caller deletes the key), or StorageError.
   */
  writeBlob(key: string, body: Readable): Promise<void>;
  /**
   * Opens a blob and confirms its size (bytes) and sha256 (hex) BEFORE returning a stream, so a corrupted
   * blob is reported as `corrupt` instead of being half-sent. Memory stays flat (two passes over one file
   * descriptor, or a spool file for remote stores).
   * @throws StorageError
   */
  readVerified(key: string, expected: { size: number; sha256: string }): Promise<VerifiedRead>;
  /** Create-only write of a record; `exists` when the key is already there (nothing written). @throws StorageError */
  putRecordIfAbsent(key: string, bytes: Uint8Array): Promise<'created' | 'exists'>;
  /** A record's bytes, or undefined when absent. @throws StorageError */
  getRecord(key: string): Promise<Buffer | undefined>;
  /** Whether a record exists (cheap: stat / HeadObject). @throws StorageError */
  hasRecord(key: string): Promise<boolean>;
  /** Deletes a key; a missing key is not an error. @throws StorageError */
  delete(key: string): Promise<void>;
}
