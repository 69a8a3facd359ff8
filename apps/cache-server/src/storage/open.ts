import type { S3Client } from '@aws-sdk/client-s3';
import type { CacheStoreSpec } from '../config';
import type { CacheBackend } from './backend';
import { FsCacheBackend } from './fs-backend';

/**
 * Opens the backend for a parsed `BUILDONCE_CACHE_STORE` (no I/O; call `check()` to fail fast). The S3 backend
 * (and the AWS SDK) is loaded only for an `s3://` store, so a directory-store server stays small in memory.
 * @param opts.maxBytes largest body in bytes (sizes S3 multipart parts); `spoolDir` for S3 GET verification;
 *   `uploadBufferBytes` the S3 replica's upload buffer budget
 */
export async function openBackend(
  spec: CacheStoreSpec,
  opts: { maxBytes: number; spoolDir: string; s3Client?: S3Client; env?: NodeJS.ProcessEnv; uploadBufferBytes?: number },
): Promise<CacheBackend> {
  if (spec.kind === 'dir') return new FsCacheBackend(spec.root);
  const { S3CacheBackend } = await import('./s3-backend');
  return new S3CacheBackend({
    bucket: spec.bucket,
    prefix: spec.prefix,
    maxBytes: opts.maxBytes,
    spoolDir: opts.spoolDir,
    client: opts.s3Client,
    env: opts.env,
    uploadBufferBytes: opts.uploadBufferBytes,
  });
}
