import { readFile } from 'node:fs/promises';
import { retry } from '@buildonce/retry';
import type { Readable } from 'node:stream';
import { createRequire } from 'node:module';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { awsClients } from '@buildonce/aws';
import { sha256HexToBase64 } from '@buildonce/artifact';
import { assertKey, assertKeyPrefix, type BlobStore, type CasResult, type ObjectInfo, type ProgressFn } from './blob';
import { digestFile, PART_SIZE, PARTS_IN_FLIGHT, uploadMultipart, type FileDigests } from './multipart';
import { StoreAccessError } from './errors';
import type { StoreLocation } from './url';

const lazyRequire = createRequire(__filename);
type S3Sdk = typeof import('@aws-sdk/client-s3');
let s3SdkModule: S3Sdk | undefined;
/** `@aws-sdk/client-s3`, loaded on first use: commands on the file store never pay its start-up (~50 ms). */
const s3Sdk = (): S3Sdk => (s3SdkModule ??= lazyRequire('@aws-sdk/client-s3') as S3Sdk);

/** Files at or above this size (bytes) go through a multipart upload (libs/store/src/multipart.ts). */
export const MULTIPART_THRESHOLD = 8 * 1024 * 1024;
/**
 * Multipart part size (bytes) and parts in flight. Parts stream from the file (nothing buffered per
 * part), so memory does not grow with either; values measured with bench/publish-large.sh (see
 * docs/reliability.md). Max object: 10 000 parts = 78 GiB.
 */
export const MULTIPART_PART_SIZE = PART_SIZE;
export const MULTIPART_QUEUE_SIZE = PARTS_IN_FLIGHT;

export interface S3StoreOptions {
  /** Path-style addressing for S3-compatible servers (moto, MinIO). Default: true when `AWS_ENDPOINT_URL(_S3)` is set. */
  forcePathStyle?: boolean;
  /** Extra S3 client config (tests). Region, credentials and endpoint otherwise come from the standard AWS env/config. */
  clientConfig?: S3ClientConfig;
  env?: NodeJS.ProcessEnv;
  /** multipart part size (bytes, >= 5 MiB) and parts in flight (bench/tests; default {@link MULTIPART_PART_SIZE}, {@link MULTIPART_QUEUE_SIZE}) */
  multipart?: { partSize?: number; concurrency?: number };
}

/**
 * The S3 client of a store: from the one AWS client factory (libs/aws: standard AWS configuration,
 * path-style with a custom endpoint, retries), with `forcePathStyle` / `clientConfig` on top.
 */
export function createS3Client(opts: S3StoreOptions = {}): S3Client {
  const overrides: S3ClientConfig = { ...(opts.forcePathStyle !== undefined ? { forcePathStyle: opts.forcePathStyle } : {}), ...opts.clientConfig };
  return awsClients({ env: opts.env, overrides: { s3: overrides } }).s3();
}

function status(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

/** S3/AWS error codes that mean "slow down" (retried by the SDK's standard mode with backoff). */
const THROTTLING = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'RequestLimitExceeded', 'TooManyRequestsException', 'RequestThrottled']);
/** Network failure codes / names: the request may not have reached S3. */
const NETWORK = new Set(['ECONNREFUSED', 'ENOTFOUND', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'TimeoutError', 'RequestTimeout']);

function isNotFound(e: unknown): boolean {
  const name = (e as Error)?.name;
  return name === 'NotFound' || name === 'NoSuchKey' || (status(e) === 404 && name !== 'NoSuchBucket');
}

/**
 * S3 backend (Amazon S3 API: PutObject / CreateMultipartUpload+UploadPart+CompleteMultipartUpload
 * streamed from the file by multipart.ts, HeadObject, GetObject, ListObjectsV2, DeleteObject; conditional writes with
 * `If-None-Match: *` and `If-Match: <ETag>`).
 */
export class S3BlobStore implements BlobStore {
  readonly client: S3Client;
  readonly bucket: string;
  readonly prefix: string;
  private partClientCache: S3Client | undefined;

  constructor(
    readonly location: Extract<StoreLocation, { kind: 's3' }>,
    private readonly opts: S3StoreOptions & { client?: S3Client } = {},
  ) {
    this.client = opts.client ?? createS3Client(opts);
    this.bucket = location.bucket;
    this.prefix = location.prefix;
  }

  /**
   * The client for UploadPart: same configuration, no SDK retries (a streamed part cannot be replayed:
   * multipart.ts retries parts itself) and no SDK console warning per failed streamed request (the retry
   * is logged through the publish's log instead).
   */
  private partClient(): S3Client {
    const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };
    return (this.partClientCache ??= createS3Client({ ...this.opts, clientConfig: { ...this.opts.clientConfig, maxAttempts: 1, logger: quiet } }));
  }

  private fullKey(key: string): string {
    assertKey(key);
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  uriOf(key: string): string {
    const dir = key.endsWith('/');
    return `s3://${this.bucket}/${this.fullKey(dir ? key.slice(0, -1) : key)}${dir ? '/' : ''}`;
  }

  s3Object(key: string): { bucket: string; key: string } {
    return { bucket: this.bucket, key: this.fullKey(key) };
  }

  /**
   * Maps SDK and network errors to one-line StoreAccessErrors naming the bucket and the fix:
   * missing bucket, credentials, region, access denied, throttling after the SDK's retries,
   * 5xx after retries, unreachable endpoint, and any other S3 error response (including bodies the SDK
   * cannot parse, `UnknownError`). Errors that are not S3/network failures (bugs) pass through.
   */
  private access(e: unknown, what: string): Error {
    if (e instanceof StoreAccessError) return e;
    const err = e as Error & { Code?: string; code?: string; $metadata?: { httpStatusCode?: number; attempts?: number }; $fault?: string };
    const name = err?.name ?? '';
    const msg = (err?.message ?? String(e)).split('\n')[0]!;
    const code = err?.code ?? '';
    const st = status(e);
    const attempts = err?.$metadata?.attempts;
    const tries = attempts && attempts > 1 ? ` after ${attempts} attempts` : '';
    const b = `bucket "${this.bucket}"`;
    if (name === 'NoSuchBucket' || err?.Code === 'NoSuchBucket') {
      return new StoreAccessError(`S3 bucket "${this.bucket}" does not exist: create it or fix BUILDONCE_STORE (${what})`, { cause: e });
    }
    if (name === 'CredentialsProviderError' || /Could not load credentials|credential/i.test(msg)) {
      return new StoreAccessError(
        `no AWS credentials for s3://${this.bucket}: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or use OIDC in CI)`,
        { cause: e },
      );
    }
    if (/Region is missing/i.test(msg)) {
      return new StoreAccessError(`no AWS region for s3://${this.bucket}: set AWS_REGION`, { cause: e });
    }
    if (name === 'AccessDenied' || st === 403) {
      return new StoreAccessError(`access denied to s3://${this.bucket}/${this.prefix} (${what}): check the IAM policy of the current credentials`, {
        cause: e,
      });
    }
    if (THROTTLING.has(name) || st === 503 || st === 429) {
      return new StoreAccessError(
        `S3 is throttling requests to ${b} (${name || `HTTP ${st}`}) during ${what}${tries}: retry later or lower the request rate (AWS_MAX_ATTEMPTS raises the retries)`,
        { cause: e },
      );
    }
    if (NETWORK.has(code) || NETWORK.has(name) || /socket hang up|ECONNRESET|EPIPE|ETIMEDOUT|ECONNREFUSED/.test(msg)) {
      return new StoreAccessError(`cannot reach S3 for ${b} (${what}${tries}): ${code || name}: ${msg}: check the network and AWS_ENDPOINT_URL`, { cause: e });
    }
    if (st !== undefined || err?.$fault) {
      const known = name && name !== 'Error' && name !== 'UnknownError' && !/parse error/i.test(msg);
      const what2 = known ? `${name} (HTTP ${st ?? '?'})` : `HTTP ${st ?? '?'}${name === 'UnknownError' ? ' (UnknownError)' : ''}`;
      const fix =
        st !== undefined && st >= 500
          ? 'retry; if it persists check the S3 service health'
          : `check that s3://${this.bucket} is an S3 bucket reachable at this endpoint and the credentials may use it`;
      return new StoreAccessError(`S3 request ${what} on ${b} failed with ${what2}${tries}: ${msg.slice(0, 200)}: ${fix}`, { cause: e });
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

  /** Retries 409 ConditionalRequestConflict up to 8 times (50 ms × 2^n); any other failure is thrown at once. */
  private async withConflictRetry<T>(fn: () => Promise<T>): Promise<T> {
    return retry(fn, { retries: 8, minTimeout: 50, factor: 2, retryIf: (e) => this.isConditionalConflict(e) });
  }

  /**
   * Below {@link MULTIPART_THRESHOLD}: one PutObject with `If-None-Match: *` and the file's `ChecksumSHA256`.
   * Above: a streamed, resumable multipart upload ({@link uploadMultipart}) whose parts carry the sha256
   * from `opts.digests` (computed here in one read when absent), completed with `If-None-Match: *`.
   */
  async putFileIfAbsent(
    key: string,
    path: string,
    opts: { sha256Hex: string; size: number; contentType?: string; onProgress?: ProgressFn; digests?: FileDigests; log?: (line: string) => void },
  ): Promise<'created' | 'exists'> {
    const Key = this.fullKey(key);
    const ContentType = opts.contentType ?? 'application/octet-stream';
    try {
      if (opts.size < MULTIPART_THRESHOLD) {
        await this.withConflictRetry(async () => {
          await this.client.send(
            new (s3Sdk().PutObjectCommand)({
              Bucket: this.bucket,
              Key,
              IfNoneMatch: '*',
              ChecksumAlgorithm: 'SHA256',
              ContentType,
              Metadata: { sha256: opts.sha256Hex },
              Body: await readFile(path),
              ChecksumSHA256: sha256HexToBase64(opts.sha256Hex),
            }),
          );
        });
        opts.onProgress?.(opts.size, opts.size);
        return 'created';
      }
      const partSize = this.opts.multipart?.partSize ?? MULTIPART_PART_SIZE;
      const digests = opts.digests?.partSize === partSize ? opts.digests : await digestFile(path, partSize);
      if (digests.sha256Hex !== opts.sha256Hex || digests.size !== opts.size) {
        throw new StoreAccessError(
          `${path} changed while it was being published (sha256 ${digests.sha256Hex}, ${digests.size} bytes; expected ${opts.sha256Hex}, ${opts.size} bytes): rebuild and publish again`,
        );
      }
      const r = await this.withConflictRetry(() =>
        uploadMultipart(s3Sdk(), {
          client: this.client,
          partClient: this.partClient(),
          bucket: this.bucket,
          key: Key,
          path,
          digests,
          contentType: ContentType,
          metadata: { sha256: opts.sha256Hex },
          concurrency: this.opts.multipart?.concurrency ?? MULTIPART_QUEUE_SIZE,
          onProgress: opts.onProgress,
          log: opts.log,
        }),
      );
      return r.status;
    } catch (e) {
      if (this.isPreconditionFailed(e)) return 'exists';
      if (e instanceof StoreAccessError) throw e;
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
      if (!out.ETag) throw await this.notS3(`HeadObject ${Key}`, `no ETag, content-type ${out.ContentType ?? 'none'}`);
      const c = out.ChecksumSHA256;
      // Multipart objects carry a checksum of part checksums (and an ETag ending in -<parts>), not the file's sha256.
      const composite = out.ChecksumType === 'COMPOSITE' || (c ? /-\d+$/.test(c) : false) || /-\d+"?$/.test(out.ETag ?? '');
      const parts = Number(/-(\d+)$/.exec(c ?? '')?.[1] ?? /-(\d+)"?$/.exec(out.ETag ?? '')?.[1] ?? NaN);
      return {
        key,
        size: out.ContentLength ?? 0,
        lastModified: out.LastModified ?? new Date(0),
        etag: out.ETag,
        sha256Base64: c && !composite ? c : undefined,
        ...(c && composite && parts > 0 ? { compositeSha256: { base64: c.replace(/-\d+$/, ''), parts } } : {}),
      };
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw this.access(e, `head ${Key}`);
    }
  }

  /**
   * An answer that is not from S3 (a captive portal, a web server or a proxy answering 200 + HTML to
   * everything): S3 always sends an ETag on GetObject/HeadObject and a bucket name in ListObjectsV2.
   */
  private async notS3(what: string, detail: string): Promise<StoreAccessError> {
    let where = 'the S3 endpoint';
    try {
      const ep = await this.client.config.endpoint?.();
      if (ep) where = `${ep.protocol}//${ep.hostname}${ep.port ? `:${ep.port}` : ''}${ep.path && ep.path !== '/' ? ep.path : ''}`;
    } catch {
      // no explicit endpoint: the SDK's regional default
    }
    return new StoreAccessError(
      `${where} answered ${what} for s3://${this.bucket} with something that is not an S3 response (${detail}): check AWS_ENDPOINT_URL and any proxy in between`,
    );
  }

  async getBytes(key: string): Promise<{ bytes: Buffer; etag: string } | undefined> {
    const Key = this.fullKey(key);
    try {
      const out = await this.client.send(new (s3Sdk().GetObjectCommand)({ Bucket: this.bucket, Key }));
      if (!out.ETag) throw await this.notS3(`GetObject ${Key}`, `no ETag, content-type ${out.ContentType ?? 'none'}`);
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
      if (!out.ETag) throw await this.notS3(`GetObject ${Key}`, `no ETag, content-type ${out.ContentType ?? 'none'}`);
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
      if (out.Name === undefined && out.KeyCount === undefined) throw await this.notS3(`ListObjectsV2 ${Prefix}`, 'no bucket name or key count');
      for (const o of out.Contents ?? []) {
        if (o.Key) yield { key: o.Key.slice(strip), size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0) };
      }
      ContinuationToken = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  async listFolders(prefix: string): Promise<string[]> {
    assertKeyPrefix(prefix);
    if (prefix && !prefix.endsWith('/')) throw new Error(`listFolders needs a prefix ending in "/", got "${prefix}"`);
    const Prefix = this.prefix ? `${this.prefix}/${prefix}` : prefix;
    const out: string[] = [];
    let ContinuationToken: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(new (s3Sdk().ListObjectsV2Command)({ Bucket: this.bucket, Prefix, Delimiter: '/', ContinuationToken }));
      } catch (e) {
        throw this.access(e, `list ${Prefix}`);
      }
      for (const p of page.CommonPrefixes ?? []) if (p.Prefix) out.push(p.Prefix.slice(Prefix.length, -1));
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
    return out;
  }

  async listIncompleteUploads(prefix: string): Promise<{ key: string; initiated: Date }[]> {
    assertKeyPrefix(prefix);
    const Prefix = this.prefix ? `${this.prefix}/${prefix}` : prefix;
    const strip = this.prefix ? this.prefix.length + 1 : 0;
    const out: { key: string; initiated: Date }[] = [];
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(new (s3Sdk().ListMultipartUploadsCommand)({ Bucket: this.bucket, Prefix, KeyMarker, UploadIdMarker }));
      } catch (e) {
        throw this.access(e, `list incomplete uploads under ${Prefix}`);
      }
      for (const u of page.Uploads ?? []) if (u.Key) out.push({ key: u.Key.slice(strip), initiated: u.Initiated ?? new Date(0) });
      const more = page.IsTruncated === true;
      KeyMarker = more ? page.NextKeyMarker : undefined;
      UploadIdMarker = more ? page.NextUploadIdMarker : undefined;
    } while (KeyMarker);
    return out;
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
