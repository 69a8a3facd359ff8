import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { createRequire } from 'node:module';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { sha256HexToBase64 } from '@buildonce/artifact';
import { assertKey, assertKeyPrefix, type BlobStore, type CasResult, type ObjectInfo, type ProgressFn } from './blob';
import { StoreAccessError } from './errors';
import type { StoreLocation } from './url';

const lazyRequire = createRequire(__filename);
type S3Sdk = typeof import('@aws-sdk/client-s3');
type LibStorage = typeof import('@aws-sdk/lib-storage');
let s3SdkModule: S3Sdk | undefined;
let libStorageModule: LibStorage | undefined;
/** `@aws-sdk/client-s3`, loaded on first use: commands on the file store never pay its start-up (~50 ms). */
const s3Sdk = (): S3Sdk => (s3SdkModule ??= lazyRequire('@aws-sdk/client-s3') as S3Sdk);
/** `@aws-sdk/lib-storage` (multipart uploads), loaded on first multipart upload. */
const libStorage = (): LibStorage => (libStorageModule ??= lazyRequire('@aws-sdk/lib-storage') as LibStorage);

/** Files at or above this size (bytes) go through multipart upload (lib-storage), 8 MiB parts. */
export const MULTIPART_THRESHOLD = 8 * 1024 * 1024;

export interface S3StoreOptions {
  /** Path-style addressing for S3-compatible servers (moto, MinIO). Default: true when `AWS_ENDPOINT_URL(_S3)` is set. */
  forcePathStyle?: boolean;
  /** Extra S3 client config (tests). Region, credentials and endpoint otherwise come from the standard AWS env/config. */
  clientConfig?: S3ClientConfig;
  env?: NodeJS.ProcessEnv;
}

/**
 * Creates an S3 client that follows the standard AWS configuration (AWS_REGION, AWS_PROFILE,
 * AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3, shared config files). Region falls back to us-east-1 only
 * when a custom endpoint is set (S3-compatible servers ignore it).
 */
export function createS3Client(opts: S3StoreOptions = {}): S3Client {
  const env = opts.env ?? process.env;
  const customEndpoint = !!(env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL);
  const forcePathStyle = opts.forcePathStyle ?? (env.BUILDONCE_S3_FORCE_PATH_STYLE ? env.BUILDONCE_S3_FORCE_PATH_STYLE === 'true' : customEndpoint);
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || (customEndpoint ? 'us-east-1' : undefined);
  return new (s3Sdk().S3Client)({ forcePathStyle, ...(region ? { region } : {}), ...opts.clientConfig });
}

function status(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

function isNotFound(e: unknown): boolean {
  const name = (e as Error)?.name;
  return name === 'NotFound' || name === 'NoSuchKey' || (status(e) === 404 && name !== 'NoSuchBucket');
}

/**
 * S3 backend (Amazon S3 API: PutObject / CreateMultipartUpload+UploadPart+CompleteMultipartUpload
 * via lib-storage, HeadObject, GetObject, ListObjectsV2, DeleteObject; conditional writes with
 * `If-None-Match: *` and `If-Match: <ETag>`).
 */
export class S3BlobStore implements BlobStore {
  readonly client: S3Client;
  readonly bucket: string;
  readonly prefix: string;

  constructor(
    readonly location: Extract<StoreLocation, { kind: 's3' }>,
    opts: S3StoreOptions & { client?: S3Client } = {},
  ) {
    this.client = opts.client ?? createS3Client(opts);
    this.bucket = location.bucket;
    this.prefix = location.prefix;
  }

  private fullKey(key: string): string {
    assertKey(key);
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  uriOf(key: string): string {
    const dir = key.endsWith('/');
    return `s3://${this.bucket}/${this.fullKey(dir ? key.slice(0, -1) : key)}${dir ? '/' : ''}`;
  }

  /** S3 key (with prefix) of a store key, for callers that hand it to other AWS APIs (Lambda S3Key). */
  s3KeyOf(key: string): string {
    return this.fullKey(key);
  }

  /** Maps SDK errors to one-line StoreAccessErrors; returns undefined for errors the caller handles. */
  private access(e: unknown, what: string): Error {
    const err = e as Error & { Code?: string };
    const name = err?.name ?? '';
    if (name === 'NoSuchBucket' || err?.Code === 'NoSuchBucket') {
      return new StoreAccessError(`S3 bucket "${this.bucket}" does not exist: create it or fix BUILDONCE_STORE (${what})`);
    }
    if (name === 'CredentialsProviderError' || /Could not load credentials|credential/i.test(err?.message ?? '')) {
      return new StoreAccessError(`no AWS credentials for s3://${this.bucket}: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or use OIDC in CI)`);
    }
    if (/Region is missing/i.test(err?.message ?? '')) {
      return new StoreAccessError(`no AWS region for s3://${this.bucket}: set AWS_REGION`);
    }
    if (name === 'AccessDenied' || status(e) === 403) {
      return new StoreAccessError(`access denied to s3://${this.bucket}/${this.prefix} (${what}): check the IAM policy of the current credentials`);
    }
    if (['ECONNREFUSED', 'ENOTFOUND', 'TimeoutError'].some((c) => (err as NodeJS.ErrnoException)?.code === c || name === c)) {
      return new StoreAccessError(`cannot reach S3 for s3://${this.bucket} (${what}): ${err.message}`);
    }
    return err instanceof Error ? err : new Error(String(e));
  }

  private isPreconditionFailed(e: unknown): boolean {
    return status(e) === 412 || (e as Error)?.name === 'PreconditionFailed';
  }

  /** 409 ConditionalRequestConflict: a concurrent conditional write on the same key is in flight. */
  private isConditionalConflict(e: unknown): boolean {
    return status(e) === 409 || (e as Error)?.name === 'ConditionalRequestConflict';
  }

  private async withConflictRetry<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (this.isConditionalConflict(e) && attempt < 8) {
          await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
          continue;
        }
        throw e;
      }
    }
  }

  async putFileIfAbsent(key: string, path: string, opts: { sha256Hex: string; size: number; contentType?: string; onProgress?: ProgressFn }): Promise<'created' | 'exists'> {
    const Key = this.fullKey(key);
    const common = {
      Bucket: this.bucket,
      Key,
      IfNoneMatch: '*',
      ChecksumAlgorithm: 'SHA256' as const,
      ContentType: opts.contentType ?? 'application/octet-stream',
      Metadata: { sha256: opts.sha256Hex },
    };
    try {
      await this.withConflictRetry(async () => {
        if (opts.size < MULTIPART_THRESHOLD) {
          await this.client.send(new (s3Sdk().PutObjectCommand)({ ...common, Body: await readFile(path), ChecksumSHA256: sha256HexToBase64(opts.sha256Hex) }));
          opts.onProgress?.(opts.size, opts.size);
        } else {
          const upload = new (libStorage().Upload)({
            client: this.client,
            params: { ...common, Body: createReadStream(path), ContentLength: opts.size },
            partSize: MULTIPART_THRESHOLD,
            queueSize: 4,
            leavePartsOnError: false,
          });
          upload.on('httpUploadProgress', (p) => opts.onProgress?.(p.loaded ?? 0, p.total ?? opts.size));
          await upload.done();
        }
      });
      return 'created';
    } catch (e) {
      if (this.isPreconditionFailed(e)) return 'exists';
      throw this.access(e, `upload ${Key}`);
    }
  }

  async putBytesIfAbsent(key: string, bytes: Uint8Array, opts: { contentType?: string } = {}): Promise<'created' | 'exists'> {
    const Key = this.fullKey(key);
    try {
      await this.withConflictRetry(() =>
        this.client.send(
          new (s3Sdk().PutObjectCommand)({
            Bucket: this.bucket,
            Key,
            Body: bytes,
            IfNoneMatch: '*',
            ChecksumAlgorithm: 'SHA256',
            ContentType: opts.contentType ?? 'application/json',
          }),
        ),
      );
      return 'created';
    } catch (e) {
      if (this.isPreconditionFailed(e)) return 'exists';
      throw this.access(e, `put ${Key}`);
    }
  }

  async putBytesIfMatch(key: string, bytes: Uint8Array, expectedEtag: string | null, opts: { contentType?: string } = {}): Promise<CasResult> {
    const Key = this.fullKey(key);
    try {
      const out = await this.client.send(
        new (s3Sdk().PutObjectCommand)({
          Bucket: this.bucket,
          Key,
          Body: bytes,
          ...(expectedEtag === null ? { IfNoneMatch: '*' } : { IfMatch: expectedEtag }),
          ChecksumAlgorithm: 'SHA256',
          ContentType: opts.contentType ?? 'application/json',
        }),
      );
      return { status: 'written', etag: out.ETag ?? '' };
    } catch (e) {
      if (this.isPreconditionFailed(e) || this.isConditionalConflict(e) || (expectedEtag !== null && status(e) === 404)) {
        return { status: 'precondition-failed' };
      }
      throw this.access(e, `put ${Key}`);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const Key = this.fullKey(key);
    try {
      const out = await this.client.send(new (s3Sdk().HeadObjectCommand)({ Bucket: this.bucket, Key, ChecksumMode: 'ENABLED' }));
      const c = out.ChecksumSHA256;
      // Multipart objects carry a checksum of part checksums (and an ETag ending in -<parts>), not the file's sha256.
      const composite = out.ChecksumType === 'COMPOSITE' || (c ? /-\d+$/.test(c) : false) || /-\d+"?$/.test(out.ETag ?? '');
      return {
        key,
        size: out.ContentLength ?? 0,
        lastModified: out.LastModified ?? new Date(0),
        sha256Base64: c && !composite ? c : undefined,
      };
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw this.access(e, `head ${Key}`);
    }
  }

  async getBytes(key: string): Promise<{ bytes: Buffer; etag: string } | undefined> {
    const Key = this.fullKey(key);
    try {
      const out = await this.client.send(new (s3Sdk().GetObjectCommand)({ Bucket: this.bucket, Key }));
      const bytes = Buffer.from(await out.Body!.transformToByteArray());
      return { bytes, etag: out.ETag ?? '' };
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw this.access(e, `get ${Key}`);
    }
  }

  async getStream(key: string): Promise<Readable | undefined> {
    const Key = this.fullKey(key);
    try {
      const out = await this.client.send(new (s3Sdk().GetObjectCommand)({ Bucket: this.bucket, Key }));
      return out.Body as Readable;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw this.access(e, `get ${Key}`);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    assertKeyPrefix(prefix);
    const Prefix = this.prefix ? `${this.prefix}/${prefix}` : prefix;
    const strip = this.prefix ? this.prefix.length + 1 : 0;
    let ContinuationToken: string | undefined;
    do {
      let out;
      try {
        out = await this.client.send(new (s3Sdk().ListObjectsV2Command)({ Bucket: this.bucket, Prefix, ContinuationToken }));
      } catch (e) {
        throw this.access(e, `list ${Prefix}`);
      }
      for (const o of out.Contents ?? []) {
        if (o.Key) yield { key: o.Key.slice(strip), size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0) };
      }
      ContinuationToken = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  async delete(key: string): Promise<void> {
    const Key = this.fullKey(key);
    try {
      await this.client.send(new (s3Sdk().DeleteObjectCommand)({ Bucket: this.bucket, Key }));
    } catch (e) {
      if (isNotFound(e)) return;
      throw this.access(e, `delete ${Key}`);
    }
  }
}
