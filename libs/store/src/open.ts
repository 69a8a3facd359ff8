import type { BlobStore } from './blob';
import { FsBlobStore } from './fs-blob';
import { S3BlobStore, type S3StoreOptions } from './s3-blob';
import type { StoreLocation } from './url';

/**
 * Opens the backend for a parsed store location (`s3://…` → S3BlobStore, `file://…` → FsBlobStore).
 * Opening does no I/O; errors surface on first use as StoreAccessError.
 */
export function openStore(location: StoreLocation, opts: S3StoreOptions = {}): BlobStore {
  return location.kind === 's3' ? new S3BlobStore(location, opts) : new FsBlobStore(location);
}
