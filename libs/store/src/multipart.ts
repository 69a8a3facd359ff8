import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import pLimit from 'p-limit';
import { retry } from '@buildonce/retry';
import type { ProgressFn } from './blob';

/*
 * Streamed S3 multipart upload (Amazon S3 API: ListMultipartUploads, ListParts, CreateMultipartUpload,
 * UploadPart, CompleteMultipartUpload, AbortMultipartUpload; checksums per the S3 User Guide, "Checking
 * object integrity": SHA256 is a COMPOSITE checksum, the sha256 of the concatenated raw part digests —
 * FULL_OBJECT exists only for the CRC algorithms).
 *
 * Why not lib-storage: it buffers every in-flight part in memory, and the SDK's own retries cannot replay
 * a stream. Here each part is a file range streamed from disk (a few 64 KiB chunks in memory), sent with its
 * sha256 computed in the same pass that checked the file against its manifest, so S3 refuses a part whose
 * bytes changed or were damaged in transit; a refused or failed part is retried alone, re-read from the file.
 */

/**
 * Part size (bytes): 8 MiB, as the AWS CLI. Measured with bench/publish-large.sh's helper against
 * moto_server (200 MiB, two rounds, BENCH_PART_MIB / BENCH_PARTS_IN_FLIGHT): 8 MiB × 4 in flight was
 * the fastest in both rounds (8 × 8, 8 × 12, 16 × 6 and 5 × 10 slower or erratic), peak RSS 106-128 MiB
 * for all of them, since parts stream from the file and memory does not grow with either setting.
 */
export const PART_SIZE = 8 * 1024 * 1024;
/** Parts uploaded at once (see {@link PART_SIZE}). */
export const PARTS_IN_FLIGHT = 4;
/** Attempts per part (first try + retries); each attempt re-reads the part from the file. */
export const PART_ATTEMPTS = 10;

/** sha256 of a whole file and of each of its `partSize` ranges, from one streamed read. */
export interface FileDigests {
  /** bytes */
  size: number;
  sha256Hex: string;
  /** bytes per part (the last one may be shorter) */
  partSize: number;
  /** raw sha256 (32 bytes) of each part, in order; one part for an empty file */
  parts: Buffer[];
}

/** Number of parts a file of `size` bytes has in `partSize`-byte parts (at least 1). */
export function partCount(size: number, partSize: number): number {
  return Math.max(1, Math.ceil(size / partSize));
}

/**
 * The S3 composite SHA256 of a multipart object from its raw part digests: base64 sha256 of their
 * concatenation, without the `-<parts>` suffix (Amazon S3 User Guide, "Checking object integrity").
 */
export function compositeSha256(parts: readonly Buffer[]): string {
  return createHash('sha256').update(Buffer.concat(parts)).digest('base64');
}

/**
 * Reads a file once and returns its sha256 and the sha256 of each `partSize` range (what S3 checks
 * per UploadPart and combines into the composite checksum). Constant memory (1 MiB chunks).
 * @throws fs errors (ENOENT, EACCES)
 */
export async function digestFile(path: string, partSize: number = PART_SIZE): Promise<FileDigests> {
  return digestStream(createReadStream(path, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>, partSize);
}

/**
 * {@link digestFile} for any byte stream (e.g. a stored object being verified): its sha256 and the sha256 of
 * each `partSize` range, in one pass, holding one chunk at a time.
 * @throws what the stream throws
 */
export async function digestStream(stream: AsyncIterable<Buffer | Uint8Array>, partSize: number = PART_SIZE): Promise<FileDigests> {
  const whole = createHash('sha256');
  const parts: Buffer[] = [];
  let part = createHash('sha256');
  let inPart = 0;
  let size = 0;
  for await (const chunk of stream) {
    whole.update(chunk);
    size += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      const n = Math.min(partSize - inPart, chunk.length - off);
      part.update(chunk.subarray(off, off + n));
      inPart += n;
      off += n;
      if (inPart === partSize) {
        parts.push(part.digest());
        part = createHash('sha256');
        inPart = 0;
      }
    }
  }
  if (inPart > 0 || parts.length === 0) parts.push(part.digest());
  return { size, sha256Hex: whole.digest('hex'), partSize, parts };
}

export interface MultipartUploadOptions {
  /** client for the small calls (list, create, complete, abort), with the SDK's retries */
  client: S3Client;
  /** client for UploadPart, without SDK retries (a streamed body cannot be replayed; parts retry here) */
  partClient: S3Client;
  bucket: string;
  key: string;
  /** the file (non-empty) */
  path: string;
  /** the file's digests; their sha256 and size must be the ones the caller checked */
  digests: FileDigests;
  contentType: string;
  metadata?: Record<string, string>;
  concurrency?: number;
  /** attempts per part (default {@link PART_ATTEMPTS}) */
  attempts?: number;
  onProgress?: ProgressFn;
  /** one line per notable step (resumed upload, aborted stale uploads, retried part) */
  log?: (line: string) => void;
}

/** What a multipart upload did. `exists`: the key was already there (If-None-Match), nothing was written. */
export interface MultipartUploadResult {
  status: 'created' | 'exists';
  uploadId?: string;
  /** parts sent in this run (retries not counted twice) and parts taken over from an interrupted upload */
  partsSent: number;
  partsResumed: number;
  /** UploadPart attempts that failed and were retried */
  partRetries: number;
  /** stale incomplete uploads of the key that were aborted */
  aborted: number;
}

type S3Sdk = typeof import('@aws-sdk/client-s3');

const errName = (e: unknown): string => (e as Error)?.name ?? '';
const errStatus = (e: unknown): number | undefined => (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;

/** Errors after which retrying the same part cannot help (the upload is gone, access is refused). */
function fatalForPart(e: unknown): boolean {
  const name = errName(e);
  if (name === 'NoSuchUpload' || name === 'NoSuchBucket' || name === 'AccessDenied' || name === 'InvalidAccessKeyId' || name === 'CredentialsProviderError')
    return true;
  const st = errStatus(e);
  // 400 BadDigest / XAmzContentChecksumMismatch / InvalidDigest / RequestTimeout are transient for a part: re-read, re-send
  return st === 403 || st === 404;
}

class Counter extends Transform {
  n = 0;
  constructor(private readonly tick: (n: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.n += chunk.length;
    this.tick(chunk.length);
    cb(null, chunk);
  }
}

/** MD5 hex of a file range (checks parts of an interrupted upload whose ListParts carries no checksum, only the MD5 ETag). */
async function md5OfRange(path: string, start: number, end: number): Promise<string> {
  const h = createHash('md5');
  for await (const c of createReadStream(path, { start, end: end - 1, highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) h.update(c);
  return h.digest('hex');
}

/**
 * Create-only multipart upload of a file, resumable across crashes:
 *  1. an incomplete upload of the same key with SHA256 checksums (a publish killed mid-way) is taken
 *     over: its parts whose size and checksum (ListParts `ChecksumSHA256`, or the MD5 ETag when the
 *     server lists no checksum) match the file are kept; other incomplete uploads of the key are aborted;
 *  2. missing parts are streamed from the file, `concurrency` at a time, each with its precomputed
 *     `ChecksumSHA256` (S3 refuses a part whose bytes differ); a failed part is retried alone with
 *     backoff (new read of its range), up to `attempts` times;
 *  3. CompleteMultipartUpload with `If-None-Match: *` and every part's checksum. A 412 means the key
 *     exists (`exists`); the upload is then aborted. Once the key exists, any other incomplete upload of
 *     it (one whose CreateMultipartUpload response was lost and retried) is aborted. On any error the
 *     upload is aborted too (best effort), so only a killed process leaves an incomplete upload behind,
 *     which the next attempt resumes.
 * The caller verifies the stored object (HeadObject composite checksum against {@link compositeSha256}).
 * @throws the SDK's errors (the caller maps them); Error when the upload vanished twice (concurrent aborts)
 */
export async function uploadMultipart(sdk: S3Sdk, o: MultipartUploadOptions): Promise<MultipartUploadResult> {
  const { client, bucket, key: Key, digests } = o;
  const log = o.log ?? (() => undefined);
  const n = digests.parts.length;
  const result: MultipartUploadResult = { status: 'created', partsSent: 0, partsResumed: 0, partRetries: 0, aborted: 0 };
  const abort = async (UploadId: string) => {
    await client.send(new sdk.AbortMultipartUploadCommand({ Bucket: bucket, Key, UploadId })).catch((e: unknown) => {
      if (errName(e) !== 'NoSuchUpload' && errStatus(e) !== 404) throw e;
    });
  };

  let listDenied = false;
  /** incomplete uploads of exactly this key, newest first (ListMultipartUploads pages) */
  const listUploads = async (): Promise<{ UploadId: string; ChecksumAlgorithm?: string }[]> => {
    const found: { UploadId: string; ChecksumAlgorithm?: string; at: number }[] = [];
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    do {
      let page;
      try {
        page = await client.send(new sdk.ListMultipartUploadsCommand({ Bucket: bucket, Prefix: Key, KeyMarker, UploadIdMarker }));
      } catch (e) {
        // a publisher role without s3:ListBucketMultipartUploads still publishes, without resuming or clean-up
        if (errStatus(e) !== 403 && errName(e) !== 'AccessDenied') throw e;
        if (!listDenied)
          log(`cannot list incomplete uploads of s3://${bucket}/${Key} (no s3:ListBucketMultipartUploads): an interrupted upload is not resumed`);
        listDenied = true;
        return [];
      }
      for (const u of page.Uploads ?? [])
        if (u.Key === Key && u.UploadId) found.push({ UploadId: u.UploadId, ChecksumAlgorithm: u.ChecksumAlgorithm, at: u.Initiated?.getTime() ?? 0 });
      KeyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      UploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (KeyMarker);
    return found.sort((a, b) => b.at - a.at);
  };
  /** once the key exists, every incomplete upload of it is dead weight (e.g. one whose CreateMultipartUpload response was lost and retried) */
  const abortLeftovers = async () => {
    const left = await listUploads().catch(() => []);
    for (const u of left) await abort(u.UploadId).catch(() => undefined);
    result.aborted += left.length;
  };

  for (let round = 0; ; round++) {
    // 1. interrupted uploads of this key
    let resume: { UploadId: string } | undefined;
    const stale: string[] = [];
    for (const u of await listUploads()) {
      if (!resume && u.ChecksumAlgorithm === 'SHA256') resume = { UploadId: u.UploadId };
      else stale.push(u.UploadId);
    }
    for (const id of stale) await abort(id);
    result.aborted += stale.length;
    if (stale.length) log(`aborted ${stale.length} stale incomplete upload(s) of s3://${bucket}/${Key}`);

    const done = new Map<number, { ETag: string }>();
    let UploadId: string;
    if (resume) {
      UploadId = resume.UploadId;
      let PartNumberMarker: string | undefined;
      const listed: { PartNumber: number; Size: number; ETag: string; ChecksumSHA256?: string }[] = [];
      do {
        const page = await client.send(new sdk.ListPartsCommand({ Bucket: bucket, Key, UploadId, PartNumberMarker }));
        for (const p of page.Parts ?? [])
          if (p.PartNumber && p.ETag) listed.push({ PartNumber: p.PartNumber, Size: p.Size ?? -1, ETag: p.ETag, ChecksumSHA256: p.ChecksumSHA256 });
        PartNumberMarker = page.IsTruncated ? String(page.NextPartNumberMarker) : undefined;
      } while (PartNumberMarker);
      for (const p of listed) {
        if (p.PartNumber > n) continue;
        const start = (p.PartNumber - 1) * digests.partSize;
        const end = Math.min(start + digests.partSize, digests.size);
        if (p.Size !== end - start) continue;
        const ours = digests.parts[p.PartNumber - 1]!.toString('base64');
        const ok = p.ChecksumSHA256
          ? p.ChecksumSHA256 === ours
          : /^"?[0-9a-f]{32}"?$/.test(p.ETag) && p.ETag.replace(/"/g, '') === (await md5OfRange(o.path, start, end));
        if (ok) done.set(p.PartNumber, { ETag: p.ETag });
      }
      result.partsResumed = done.size;
      log(`resuming interrupted upload of s3://${bucket}/${Key}: ${done.size} of ${n} part(s) already stored`);
    } else {
      const created = await client.send(
        new sdk.CreateMultipartUploadCommand({
          Bucket: bucket,
          Key,
          ContentType: o.contentType,
          ...(o.metadata ? { Metadata: o.metadata } : {}),
          ChecksumAlgorithm: 'SHA256',
          ChecksumType: 'COMPOSITE',
        }),
      );
      UploadId = created.UploadId!;
    }
    result.uploadId = UploadId;

    try {
      // 2. parts
      let loaded = 0;
      for (const p of done.keys()) loaded += Math.min(digests.partSize, digests.size - (p - 1) * digests.partSize);
      const report = () => o.onProgress?.(loaded, digests.size);
      report();
      const limit = pLimit(o.concurrency ?? PARTS_IN_FLIGHT);
      const etags: string[] = new Array(n);
      for (const [p, v] of done) etags[p - 1] = v.ETag;
      await Promise.all(
        Array.from({ length: n }, (_, i) => i)
          .filter((i) => !done.has(i + 1))
          .map((i) =>
            limit(async () => {
              const start = i * digests.partSize;
              const end = Math.min(start + digests.partSize, digests.size);
              const ChecksumSHA256 = digests.parts[i]!.toString('base64');
              etags[i] = await retry(
                async () => {
                  const counter = new Counter((c) => {
                    loaded += c;
                    report();
                  });
                  const body = createReadStream(o.path, { start, end: end - 1, highWaterMark: 256 * 1024 });
                  try {
                    const out = await o.partClient.send(
                      new sdk.UploadPartCommand({
                        Bucket: bucket,
                        Key,
                        UploadId,
                        PartNumber: i + 1,
                        ContentLength: end - start,
                        ChecksumSHA256,
                        Body: body.pipe(counter),
                      }),
                    );
                    if (out.ChecksumSHA256 && out.ChecksumSHA256 !== ChecksumSHA256) {
                      throw Object.assign(new Error(`part ${i + 1}: S3 stored checksum ${out.ChecksumSHA256}, sent ${ChecksumSHA256}`), { name: 'BadDigest' });
                    }
                    return out.ETag!;
                  } catch (e) {
                    body.destroy();
                    loaded -= counter.n;
                    report();
                    throw e;
                  }
                },
                {
                  retries: (o.attempts ?? PART_ATTEMPTS) - 1,
                  minTimeout: 100,
                  maxTimeout: 4000,
                  factor: 2,
                  jitter: 'double',
                  retryIf: (e) => !fatalForPart(e),
                  onFailedAttempt: (e, { retriesLeft }) => {
                    result.partRetries++;
                    if (retriesLeft > 0)
                      log(`part ${i + 1} of ${n}: ${e.name}: ${(e.message ?? '').split('\n')[0]!.slice(0, 120)}; retrying (${retriesLeft} left)`);
                  },
                },
              );
              result.partsSent++;
            }),
          ),
      );

      // 3. complete, create-only
      try {
        await client.send(
          new sdk.CompleteMultipartUploadCommand({
            Bucket: bucket,
            Key,
            UploadId,
            IfNoneMatch: '*',
            ChecksumType: 'COMPOSITE',
            MultipartUpload: { Parts: etags.map((ETag, i) => ({ PartNumber: i + 1, ETag, ChecksumSHA256: digests.parts[i]!.toString('base64') })) },
          }),
        );
      } catch (e) {
        if (errStatus(e) === 412 || errName(e) === 'PreconditionFailed') {
          await abort(UploadId);
          await abortLeftovers();
          return { ...result, status: 'exists' };
        }
        throw e;
      }
      await abortLeftovers();
      return result;
    } catch (e) {
      // the upload vanished (a concurrent publisher of the same version aborted it as stale): start over once
      if (
        (errName(e) === 'NoSuchUpload' || ((e as { cause?: unknown })?.cause && errName((e as { cause?: unknown }).cause) === 'NoSuchUpload')) &&
        round === 0
      ) {
        log(`upload ${UploadId} of s3://${bucket}/${Key} was aborted by someone else; starting over`);
        continue;
      }
      await abort(UploadId).catch(() => undefined);
      throw e;
    }
  }
}
