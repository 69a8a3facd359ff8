import type { S3Client } from '@aws-sdk/client-s3';
import type { CacheStoreSpec } from '../config';
import type { CacheBackend } from './backend';
import { FsCacheBackend } from './fs-backend';
import { S3CacheBackend } from './s3-backend';

/**
 * Opens the backend for a parsed `BUILDONCE_CACHE_STORE` (no I/O; call `check()` to fail fast).
 * @param opts.maxBytes largest body in bytes (sizes S3 multipart parts); `spoolDir` for S3 GET verification
 */
export function openBackend(spec: CacheStoreSpec, opts: { maxBytes: number; spoolDir: string; s3Client?: S3Client; env?: NodeJS.ProcessEnv }): CacheBackend {
  if (spec.kind === 'dir') return new FsCacheBackend(spec.root);
  return new S3CacheBackend({ bucket: spec.bucket, prefix: spec.prefix, maxBytes: opts.maxBytes, spoolDir: opts.spoolDir, client: opts.s3Client, env: opts.env });
}
