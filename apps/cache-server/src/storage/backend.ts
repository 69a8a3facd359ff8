import type { Readable } from 'node:stream';

/** A backend failure (I/O, credentials, network) is a `StoreAccessError` (@buildonce/store): answered as a miss on GET and 503 on PUT. */

/** Result of reading a blob whose size and sha256 are known from its record. */
export type VerifiedRead =
  /**
   * the size matched and, unless `verifiedWhileStreaming`, the sha256 too; `stream` yields exactly the recorded
   * bytes or fails with CorruptBlobError before its last chunk (constant memory)
   */
  | { status: 'ok'; stream: Readable; size: number; verifiedWhileStreaming?: boolean }
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
  /** Fails fast with StoreAccessError when the store cannot be used (directory not writable, bucket missing). */
  check(): Promise<void>;
  /**
   * Streams `body` into the blob `key` (a fresh unique key). Resolves once the bytes are durable; rejects with
   * the body's own error when the body stream fails (the caller deletes the key), or StoreAccessError.
   */
  writeBlob(key: string, body: Readable): Promise<void>;
  /**
   * Opens a blob and confirms its size (bytes) and sha256 (hex), either before returning a stream (`corrupt`
   * instead of a half-sent body) or while streaming (`verifiedWhileStreaming`: the stream fails with
   * CorruptBlobError before its last chunk). Memory stays flat.
   * @throws StoreAccessError
   */
  readVerified(key: string, expected: { size: number; sha256: string }): Promise<VerifiedRead>;
  /** Create-only write of a record; `exists` when the key is already there (nothing written). @throws StoreAccessError */
  putRecordIfAbsent(key: string, bytes: Uint8Array): Promise<'created' | 'exists'>;
  /** A record's bytes, or undefined when absent. @throws StoreAccessError */
  getRecord(key: string): Promise<Buffer | undefined>;
  /** Whether a record exists (cheap: stat / HeadObject). @throws StoreAccessError */
  hasRecord(key: string): Promise<boolean>;
  /** Deletes a key; a missing key is not an error. @throws StoreAccessError */
  delete(key: string): Promise<void>;
  /**
   * Deletes the record `key` only while it still holds exactly `bytes` (a compare-and-delete), so a late
   * quarantine never removes a record that was written again in the meantime.
   * @returns `deleted`, `changed` (another record is there now: left alone) or `missing`
   * @throws StoreAccessError
   */
  deleteRecordIfSame(key: string, bytes: Uint8Array): Promise<'deleted' | 'changed' | 'missing'>;
  /**
   * Every record under `prefix` with its bytes and modification time (ms since epoch); only backends that can
   * enumerate cheaply (the directory store) implement it. @throws StoreAccessError
   */
  listRecords?(prefix: string): AsyncIterable<{ key: string; mtimeMs: number; bytes: Buffer }>;
}
