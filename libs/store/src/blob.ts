import type { Readable } from 'node:stream';
import type { StoreLocation } from './url';
import { ConfigError } from '@buildonce/errors';
import type { FileDigests } from './multipart';

/** Metadata of a stored object. Keys are relative to the store prefix (e.g. `artifacts/p/123/bootstrap.zip`). */
export interface ObjectInfo {
  key: string;
  /** bytes */
  size: number;
  lastModified: Date;
  /**
   * sha256 of the whole object as base64, when the backend knows it without reading the bytes
   * (S3 full-object `ChecksumSHA256`). Undefined for composite (multipart) checksums.
   */
  sha256Base64?: string;
  /**
   * S3 composite checksum of a multipart object: base64 sha256 of the concatenated raw sha256 digests
   * of its parts (without the `-<parts>` suffix), and the number of parts. Undefined otherwise.
   */
  compositeSha256?: { base64: string; parts: number };
  /** S3 ETag (HeadObject), e.g. to copy exactly this object (`x-amz-copy-source-if-match`); undefined on other stores */
  etag?: string;
}

/** Upload progress callback: bytes sent so far and total bytes. */
export type ProgressFn = (loadedBytes: number, totalBytes: number) => void;

/** Result of a conditional pointer write. */
export type CasResult = { status: 'written'; etag: string } | { status: 'precondition-failed' };

/**
 * The narrow object-store interface both backends implement (S3 and filesystem) with the same
 * semantics. Every write is all-or-nothing: a reader never sees a partial object.
 */
export interface BlobStore {
  readonly location: StoreLocation;
  /** Full URI of a key (`s3://bucket/prefix/key` or `file:///root/key`). */
  uriOf(key: string): string;
  /**
   * The S3 object behind a key (bucket and full object key with the store prefix), for AWS APIs that read
   * from S3 themselves (Lambda UpdateFunctionCode S3Key, the EC2 pointer); undefined for non-S3 stores.
   */
  s3Object(key: string): { bucket: string; key: string } | undefined;
  /**
   * Create-only upload of a file (S3: PutObject / multipart above 8 MiB with `If-None-Match: *` and
   * SHA256 checksums; file: temp file + fsync + link). `exists` means the key was already there and
   * nothing was written; the caller decides whether the stored bytes are the same.
   * @param sha256Hex sha256 of the file, sent as the object's checksum so the server verifies it
   * @param digests per-part sha256 of the file from the caller's own read (S3 multipart; computed when absent)
   * @throws StoreAccessError (missing bucket, credentials, permissions)
   */
  putFileIfAbsent(
    key: string,
    path: string,
    opts: { sha256Hex: string; size: number; contentType?: string; onProgress?: ProgressFn; digests?: FileDigests; log?: (line: string) => void },
  ): Promise<'created' | 'exists'>;
  /** Create-only write of a small byte buffer (manifests, history entries). */
  putBytesIfAbsent(key: string, bytes: Uint8Array, opts?: { contentType?: string }): Promise<'created' | 'exists'>;
  /**
   * Compare-and-swap write (S3: PutObject with `If-Match: <etag>`, or `If-None-Match: *` when
   * `expectedEtag` is null; file: a lock file around compare + atomic rename).
   */
  putBytesIfMatch(key: string, bytes: Uint8Array, expectedEtag: string | null, opts?: { contentType?: string }): Promise<CasResult>;
  /** HeadObject (S3 with `ChecksumMode: ENABLED`); undefined when the key does not exist. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Whole object into memory with its etag (for small JSON objects); undefined when missing. */
  getBytes(key: string): Promise<{ bytes: Buffer; etag: string } | undefined>;
  /** Object as a stream (constant memory); undefined when missing. */
  getStream(key: string): Promise<Readable | undefined>;
  /** Every object under a key prefix (ListObjectsV2 pages / a directory walk), unordered. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Deletes a key; deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /**
   * Names of the immediate "folders" under a prefix ending in `/` (S3: ListObjectsV2 with
   * `Delimiter: /`, CommonPrefixes; file: one readdir), unordered, without the prefix or a trailing `/`.
   * Lets readers of the ledger find projects and environments without listing every history entry.
   * Optional: callers fall back to {@link list}.
   */
  listFolders?(prefix: string): Promise<string[]>;
  /**
   * Multipart uploads under a key prefix that were started and never completed nor aborted (S3
   * ListMultipartUploads pages; keys relative to the store, `initiated` as S3 reports it). They cost storage
   * until an `AbortIncompleteMultipartUpload` lifecycle rule (or a resumed publish) ends them. Absent on
   * stores that have no such thing (filesystem).
   * @throws StoreAccessError
   */
  listIncompleteUploads?(prefix: string): Promise<{ key: string; initiated: Date }[]>;
}

/**
 * Validates a store key: relative, `/`-separated, no empty, `.` or `..` segments.
 * @throws Error naming the key
 */
export function assertKey(key: string): void {
  if (!key || key.startsWith('/') || key.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new Error(`invalid store key "${key}": keys are relative paths without "." or ".." segments`);
  }
}

/**
 * Validates a list prefix: empty, or a relative `/`-separated path (a trailing `/` allowed) without
 * empty, `.` or `..` segments, so a listing never walks outside the store.
 * @throws ConfigError naming the prefix
 */
export function assertKeyPrefix(prefix: string): void {
  if (prefix === '') return;
  const body = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  if (!body || body.startsWith('/') || body.includes('\\') || body.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new ConfigError(`invalid store key prefix "${prefix}": prefixes are relative paths without "." or ".." segments`);
  }
}
