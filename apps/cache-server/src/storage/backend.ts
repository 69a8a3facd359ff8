import type { Readable } from 'node:stream';

/** A backend failure (I/O, credentials, network) is a `StoreAccessError` (@buildonce/store): answered as a miss on GET and 503 on PUT. */

/**
 * What a blob was when it was written and verified, kept in its record: a GET that finds the same identity streams
 * the blob without re-hashing it (the bytes were hashed on the way in; the scrubber re-hashes them at rest).
 * - `file`: `fstat` of the descriptor written to, after the last write: device and inode (decimal strings: they
 *   may exceed 2^53), size in bytes, modification time in ns since the epoch (decimal string).
 * - `s3`: the object's ETag (quoted, as S3 returns it) and VersionId on a versioned bucket.
 */
export type BlobIdentity = { kind: 'file'; dev: string; ino: string; size: number; mtimeNs: string } | { kind: 's3'; etag: string; versionId?: string };

/** Result of reading a blob whose size and sha256 are known from its record. */
export type VerifiedRead =
  /**
   * the size matched and either the identity recorded at write time (`identityMatched`: not re-hashed), or the
   * sha256 before sending, or the sha256 while streaming (`verifiedWhileStreaming`); `stream` yields exactly the
   * recorded bytes or fails before its last chunk (constant memory)
   */
  | { status: 'ok'; stream: Readable; size: number; verifiedWhileStreaming?: boolean; identityMatched?: boolean }
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
   * Streams `body` into the blob `key` (a fresh unique key). Resolves once the bytes are stored, with the blob's
   * identity as written (recorded, then checked by every GET); rejects with the body's own error when the body
   * stream fails (the caller deletes the key), or StoreAccessError. `declaredBytes`: the body's Content-Length
   * (a backend that buffers uploads reserves memory by it).
   */
  writeBlob(key: string, body: Readable, declaredBytes?: number): Promise<BlobIdentity>;
  /**
   * Opens a blob and confirms it is the recorded one. With `expected.identity` (records written since identities
   * exist): the identity of the very object streamed from (directory: fstat of the open descriptor; S3: `GetObject`
   * with `If-Match` on the ETag and `ChecksumMode: ENABLED`) must equal it, else `corrupt`; the bytes are not
   * re-hashed. Without it (older records): size (bytes) and sha256 (hex), either before returning a stream
   * (`corrupt` instead of a half-sent body) or while streaming (`verifiedWhileStreaming`: the stream fails with
   * CorruptBlobError before its last chunk). Memory stays flat.
   * @throws StoreAccessError
   */
  readVerified(key: string, expected: { size: number; sha256: string; identity?: BlobIdentity }): Promise<VerifiedRead>;
  /**
   * The blob's raw bytes for the scrubber (no checks), or undefined when it is gone. @throws StoreAccessError
   */
  readRaw(key: string): Promise<Readable | undefined>;
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
   * Every record under `prefix` with its bytes and modification time (ms since epoch) (directory: a directory
   * walk; S3: `ListObjectsV2` + `GetObject` per record). @throws StoreAccessError
   */
  listRecords?(prefix: string): AsyncIterable<{ key: string; mtimeMs: number; bytes: Buffer }>;
}
