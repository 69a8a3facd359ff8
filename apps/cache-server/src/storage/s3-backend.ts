import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, unlink } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Semaphore } from 'async-mutex';
import { createS3Client, S3BlobStore, StoreAccessError } from '@buildonce/store';
import { type BlobIdentity, type CacheBackend, type VerifiedRead } from './backend';
import { HashTap } from './verify';
import { DEFAULT_UPLOAD_BUFFER_MIB } from '../config';

/** Bodies up to this size (bytes) are verified in memory on GET; larger ones are spooled to disk. */
export const IN_MEMORY_VERIFY_MAX = 1024 * 1024;
/** Smallest S3 multipart part (5 MiB); parts grow when the size limit would need more than 9,000 of them. */
const MIN_PART = 5 * 1024 * 1024;
/** Parts uploaded at once per blob (lib-storage `queueSize`). */
const PARTS_IN_FLIGHT = 2;

/**
 * Bytes one upload may hold in memory: lib-storage keeps {@link PARTS_IN_FLIGHT} parts in flight plus the part
 * being filled, whose chunks it concatenates (two copies): 4 parts; a body smaller than a part is held twice
 * (chunks, then their concatenation) and sent with one PutObject.
 * @param declaredBytes the body's Content-Length; partSize bytes
 */
export function uploadBufferBytes(declaredBytes: number, partSize: number): number {
  return Math.max(1, Math.min(2 * declaredBytes, (PARTS_IN_FLIGHT + 2) * partSize));
}

export interface S3CacheBackendOptions {
  bucket: string;
  /** key prefix without leading/trailing `/` (may be empty) */
  prefix: string;
  /** largest body, bytes: sizes the multipart parts (S3 allows 10,000) */
  maxBytes: number;
  /** directory for GET spool files (deleted as soon as they are opened) */
  spoolDir: string;
  client?: S3Client;
  env?: NodeJS.ProcessEnv;
  /**
   * upload buffers this replica may hold at once, bytes (default {@link DEFAULT_UPLOAD_BUFFER_MIB} MiB): an upload
   * that would go over waits, its body unread (TCP holds the client back), so memory does not grow with the
   * number of concurrent PUTs however slow S3 is
   */
  uploadBufferBytes?: number;
}

/**
 * Pass-through that holds the last chunk back until its source ENDS cleanly: the SDK validates the object's
 * checksum (`ChecksumMode: ENABLED`) when the body ends and fails the stream instead of ending it on a mismatch,
 * so a client never receives a complete body S3's own checksum disowns (the response is cut short instead).
 */
class HoldLastChunk extends Transform {
  private held?: Buffer;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const out = this.held;
    this.held = chunk;
    cb(null, out);
  }

  override _flush(cb: TransformCallback): void {
    cb(null, this.held);
  }
}

function httpStatus(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

/**
 * S3 backend (Amazon S3 API; moto_server in tests). Records use libs/store's S3BlobStore (`PutObject` with
 * `If-None-Match: *`: create-only, 412 → `exists`). Blobs stream through lib-storage `Upload` (multipart with
 * 5 MiB+ parts, 2 in flight, so memory per upload is bounded whatever the body size; a replica-wide budget of
 * upload buffers bounds it whatever the number of concurrent uploads), under unique keys that
 * only a record makes reachable; the record keeps the body's sha256 (a multipart object's checksums are
 * checksums of parts) and the object's ETag/VersionId as written. A GET of such a record asks for exactly that
 * object (`If-Match: <ETag>`: an object replaced under the key is `412`, i.e. corrupt) with `ChecksumMode:
 * ENABLED` (the SDK checks S3's stored checksum of a single-part object as the body ends), and streams it without
 * re-hashing. Records without an identity (older ones) are re-hashed before any byte is sent (in memory up to
 * 1 MiB, else through a spool file).
 */
export class S3CacheBackend implements CacheBackend {
  readonly url: string;
  readonly client: S3Client;
  private readonly records: S3BlobStore;
  private readonly partSize: number;
  /** upload buffer budget in KiB (whole units keep the semaphore's arithmetic exact) */
  private readonly uploadBudget: Semaphore;
  private readonly uploadBudgetKiB: number;

  constructor(private readonly opts: S3CacheBackendOptions) {
    this.client = opts.client ?? createS3Client({ env: opts.env });
    const url = `s3://${opts.bucket}${opts.prefix ? '/' + opts.prefix : ''}`;
    this.url = url;
    this.records = new S3BlobStore({ kind: 's3', bucket: opts.bucket, prefix: opts.prefix, url }, { client: this.client });
    this.partSize = Math.max(MIN_PART, Math.ceil(opts.maxBytes / 9000));
    this.uploadBudgetKiB = Math.max(1, Math.floor((opts.uploadBufferBytes ?? DEFAULT_UPLOAD_BUFFER_MIB * 1024 * 1024) / 1024));
    this.uploadBudget = new Semaphore(this.uploadBudgetKiB);
  }

  /** Upload buffers reserved right now, bytes (for `/metrics` and tests). */
  get uploadBufferInUse(): number {
    return (this.uploadBudgetKiB - this.uploadBudget.getValue()) * 1024;
  }

  /** Full S3 key of a cache key. */
  s3Key(key: string): string {
    return this.opts.prefix ? `${this.opts.prefix}/${key}` : key;
  }

  async check(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.opts.bucket }));
    } catch (e) {
      throw new StoreAccessError(
        `bucket ${this.opts.bucket} is not usable (${(e as Error).name}: ${(e as Error).message}); check AWS credentials, region and BUILDONCE_CACHE_STORE`,
      );
    }
  }

  /**
   * Streams a blob to S3 (lib-storage Upload: PutObject, or multipart above one part), first reserving its
   * {@link uploadBufferBytes} from the replica's budget (FIFO; the body is not read while it waits).
   * @param declaredBytes the body's Content-Length (sizes the reservation)
   * @throws StoreAccessError; the body's own error
   */
  async writeBlob(key: string, body: Readable, declaredBytes?: number): Promise<BlobIdentity> {
    const kib = Math.min(this.uploadBudgetKiB, Math.ceil(uploadBufferBytes(declaredBytes ?? this.opts.maxBytes, this.partSize) / 1024));
    const [, release] = await this.uploadBudget.acquire(kib);
    try {
      const upload = new Upload({
        client: this.client,
        params: { Bucket: this.opts.bucket, Key: this.s3Key(key), Body: body, ContentType: 'application/gzip' },
        partSize: this.partSize,
        queueSize: PARTS_IN_FLIGHT,
        leavePartsOnError: false,
      });
      const out = await upload.done();
      if (!out.ETag) throw new StoreAccessError(`upload of s3://${this.opts.bucket}/${this.s3Key(key)} returned no ETag`);
      return { kind: 's3', etag: out.ETag, ...(out.VersionId ? { versionId: out.VersionId } : {}) };
    } finally {
      release();
    }
  }

  async readRaw(key: string): Promise<Readable | undefined> {
    return this.io(() => this.records.getStream(key));
  }

  async *listRecords(prefix: string): AsyncIterable<{ key: string; mtimeMs: number; bytes: Buffer }> {
    for await (const o of this.records.list(prefix)) {
      if (!/\/records\/[^/]+\.json$/.test(o.key)) continue;
      const got = await this.getRecord(o.key);
      if (got) yield { key: o.key, mtimeMs: o.lastModified.getTime(), bytes: got };
    }
  }

  async readVerified(key: string, expected: { size: number; sha256: string; identity?: BlobIdentity }): Promise<VerifiedRead> {
    const Key = this.s3Key(key);
    if (expected.identity) return this.readByIdentity(Key, expected.size, expected.identity);
    let body: Readable;
    let length: number | undefined;
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.opts.bucket, Key }));
      body = out.Body as Readable;
      length = out.ContentLength;
    } catch (e) {
      const name = (e as Error).name;
      if (name === 'NoSuchKey' || name === 'NotFound') return { status: 'missing' };
      throw new StoreAccessError(`GetObject s3://${this.opts.bucket}/${Key} failed: ${name}: ${(e as Error).message}`);
    }
    if (length !== undefined && length !== expected.size) {
      body.destroy();
      return { status: 'corrupt', reason: `s3://${this.opts.bucket}/${Key} has ${length} bytes, record says ${expected.size}` };
    }
    const corrupt = (sha: string): VerifiedRead => ({
      status: 'corrupt',
      reason: `s3://${this.opts.bucket}/${Key} has sha256 ${sha}, record says ${expected.sha256}`,
    });
    const tap = new HashTap(expected.size);

    if (expected.size <= IN_MEMORY_VERIFY_MAX) {
      const chunks: Buffer[] = [];
      try {
        await pipeline(body, tap, async function* (src) {
          for await (const c of src) chunks.push(c as Buffer);
        });
      } catch (e) {
        if (tap.bytes > expected.size) return { status: 'corrupt', reason: `s3://${this.opts.bucket}/${Key} is longer than ${expected.size} bytes` };
        throw new StoreAccessError(`reading s3://${this.opts.bucket}/${Key} failed: ${(e as Error).message}`);
      }
      const sha = tap.digestHex();
      if (sha !== expected.sha256 || tap.bytes !== expected.size) return corrupt(sha);
      return { status: 'ok', stream: Readable.from([Buffer.concat(chunks)]), size: expected.size };
    }

    // Spool to disk while hashing; the spool file is unlinked as soon as the read stream has it open, so it
    // disappears with the descriptor whatever happens to the response.
    await mkdir(this.opts.spoolDir, { recursive: true }).catch(() => undefined);
    const spool = join(this.opts.spoolDir, `buildonce-cache-get-${process.pid}-${randomBytes(8).toString('hex')}`);
    try {
      await pipeline(body, tap, createWriteStream(spool, { flags: 'wx', mode: 0o600 }));
    } catch (e) {
      await unlink(spool).catch(() => undefined);
      if (tap.bytes > expected.size) return { status: 'corrupt', reason: `s3://${this.opts.bucket}/${Key} is longer than ${expected.size} bytes` };
      throw new StoreAccessError(`reading s3://${this.opts.bucket}/${Key} into ${spool} failed: ${(e as Error).message}`);
    }
    const sha = tap.digestHex();
    if (sha !== expected.sha256 || tap.bytes !== expected.size) {
      await unlink(spool).catch(() => undefined);
      return corrupt(sha);
    }
    const stream = createReadStream(spool);
    try {
      await once(stream, 'open');
    } finally {
      await unlink(spool).catch(() => undefined);
    }
    return { status: 'ok', stream, size: expected.size };
  }

  /** GET of exactly the recorded object (ETag, version), streamed without re-hashing; see the class comment. */
  private async readByIdentity(Key: string, size: number, identity: BlobIdentity): Promise<VerifiedRead> {
    const where = `s3://${this.opts.bucket}/${Key}`;
    if (identity.kind !== 's3') return { status: 'corrupt', reason: `${where}: the record names a ${identity.kind} blob` };
    let body: Readable;
    let length: number | undefined;
    try {
      const out = await this.client.send(
        new GetObjectCommand({
          Bucket: this.opts.bucket,
          Key,
          IfMatch: identity.etag,
          ChecksumMode: 'ENABLED',
          ...(identity.versionId ? { VersionId: identity.versionId } : {}),
        }),
      );
      body = out.Body as Readable;
      length = out.ContentLength;
    } catch (e) {
      const name = (e as Error).name;
      if (name === 'NoSuchKey' || name === 'NotFound' || name === 'NoSuchVersion') return { status: 'missing' };
      if (httpStatus(e) === 412 || name === 'PreconditionFailed') {
        return { status: 'corrupt', reason: `${where} is not the object written (ETag ${identity.etag}): replaced since it was written` };
      }
      throw new StoreAccessError(`GetObject ${where} failed: ${name}: ${(e as Error).message}`);
    }
    if (length !== size) {
      body.destroy();
      return { status: 'corrupt', reason: `${where} has ${length} bytes, record says ${size}` };
    }
    if (size <= IN_MEMORY_VERIFY_MAX) {
      // small: read whole (the SDK's checksum check runs at the end), so a failure is a clean miss
      const chunks: Buffer[] = [];
      let got = 0;
      try {
        for await (const c of body) {
          got += (c as Buffer).length;
          if (got > size) break;
          chunks.push(c as Buffer);
        }
      } catch (e) {
        if (/checksum/i.test((e as Error).message)) return { status: 'corrupt', reason: `${where}: ${(e as Error).message}` };
        throw new StoreAccessError(`reading ${where} failed: ${(e as Error).message}`);
      }
      if (got !== size) return { status: 'corrupt', reason: `${where} has ${got} bytes, record says ${size}` };
      return { status: 'ok', stream: Readable.from([chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)]), size, identityMatched: true };
    }
    const hold = new HoldLastChunk();
    body.on('error', (e) => hold.destroy(e));
    hold.on('close', () => body.destroy());
    return { status: 'ok', stream: body.pipe(hold), size, identityMatched: true };
  }

  /** A small object's bytes and ETag (lease, access logs), or undefined. @throws StoreAccessError */
  getWithEtag(key: string): Promise<{ bytes: Buffer; etag: string } | undefined> {
    return this.io(() => this.records.getBytes(key));
  }

  /**
   * Compare-and-swap write (`PutObject` with `If-Match: <etag>`, or `If-None-Match: *` for `null`).
   * @returns `written` or `precondition-failed` (someone else wrote first) @throws StoreAccessError
   */
  async putIfMatch(key: string, bytes: Uint8Array, etag: string | null): Promise<'written' | 'precondition-failed'> {
    return (await this.io(() => this.records.putBytesIfMatch(key, bytes, etag))).status;
  }

  /** Keys (relative) and modification times under `prefix` (`ListObjectsV2`). @throws StoreAccessError */
  async *listKeys(prefix: string): AsyncIterable<{ key: string; lastModified: Date; size: number }> {
    for await (const o of this.records.list(prefix)) yield { key: o.key, lastModified: o.lastModified, size: o.size };
  }

  putRecordIfAbsent(key: string, bytes: Uint8Array): Promise<'created' | 'exists'> {
    return this.io(() => this.records.putBytesIfAbsent(key, bytes, { contentType: 'application/json' }));
  }

  async getRecord(key: string): Promise<Buffer | undefined> {
    return (await this.io(() => this.records.getBytes(key)))?.bytes;
  }

  async hasRecord(key: string): Promise<boolean> {
    return !!(await this.io(() => this.records.head(key)));
  }

  delete(key: string): Promise<void> {
    return this.io(() => this.records.delete(key));
  }

  /** Reads the record with its ETag, compares, then `DeleteObject` with `If-Match: <ETag>` (412 → `changed`). */
  async deleteRecordIfSame(key: string, bytes: Uint8Array): Promise<'deleted' | 'changed' | 'missing'> {
    const cur = await this.io(() => this.records.getBytes(key));
    if (!cur) return 'missing';
    if (!cur.bytes.equals(bytes)) return 'changed';
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.opts.bucket, Key: this.s3Key(key), IfMatch: cur.etag }));
      return 'deleted';
    } catch (e) {
      const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 412 || (e as Error).name === 'PreconditionFailed') return 'changed';
      if (status === 404) return 'missing';
      throw new StoreAccessError(`DeleteObject s3://${this.opts.bucket}/${this.s3Key(key)} failed: ${(e as Error).name}: ${(e as Error).message}`);
    }
  }

  private async io<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof StoreAccessError) throw new StoreAccessError(e.message);
      throw new StoreAccessError(`${(e as Error).name}: ${(e as Error).message}`);
    }
  }
}
