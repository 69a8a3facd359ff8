import { createRequire } from 'node:module';
import type { CompletedPart } from '@aws-sdk/client-s3';
import pLimit from 'p-limit';
import {
  PROVENANCE_FILE,
  STORED_MANIFEST_FILE,
  sha256Base64ToHex,
  sha256Bytes,
  sha256HexToBase64,
  sha256Stream,
  type StoredManifest,
} from '@buildonce/artifact';
import type { ProjectName, Version } from '@buildonce/values';
import type { ObjectInfo } from './blob';
import { RegionReplicaMismatchError, RegionStoreError, StoreAccessError } from './errors';
import { artifactKey, type ArtifactNamespace } from './keys';
import type { VerifiedComposite } from './artifacts';
import { MULTIPART_PART_SIZE, S3BlobStore, type S3StoreOptions } from './s3-blob';
import { partCount } from './multipart';
import { parseStoreUrl } from './url';

/*
 * Region copies (docs/promotion.md "Regions"): Lambda reads a function's code only from a bucket in the
 * function's own region, so every region of an environment has its own store and must hold the
 * version's bytes under the same key as the home store. Replication may have put them there already
 * (checked, never trusted); otherwise S3 copies them server-side (CopyObject, UploadPartCopy above a
 * threshold: no byte passes through this process). Either way the replica's SHA256 and size must equal
 * the verified manifest's before anything is deployed from it.
 */

const lazyRequire = createRequire(__filename);
type S3Sdk = typeof import('@aws-sdk/client-s3');
let sdk: S3Sdk | undefined;
const s3Sdk = (): S3Sdk => (sdk ??= lazyRequire('@aws-sdk/client-s3') as S3Sdk);

/** Objects at or above this size (bytes) are copied with UploadPartCopy, in parallel parts. */
export const REGION_COPY_MULTIPART_THRESHOLD = 64 * 1024 * 1024;
/** Part size (bytes) of a multipart region copy when the home object's own parts cannot be followed. */
export const REGION_COPY_PART_SIZE = 64 * 1024 * 1024;
/** UploadPartCopy requests in flight per object. */
export const REGION_COPY_PARTS_IN_FLIGHT = 8;

/**
 * Opens a region's S3 store with a client for that region (`AWS_REGION` set to it; endpoint and
 * credentials as for the home store). Opening does no I/O.
 * @throws ConfigError for a URL that is not `s3://…`
 */
export function openRegionStore(url: string, region: string, opts: S3StoreOptions = {}): S3BlobStore {
  const location = parseStoreUrl(url);
  if (location.kind !== 's3') throw new RegionStoreError(`the store of region ${region} must be s3://<bucket>/<prefix>, got ${url}`);
  const env = { ...(opts.env ?? process.env), AWS_REGION: region, AWS_DEFAULT_REGION: region };
  return new S3BlobStore(location, { ...opts, env });
}

/**
 * The region a store's bucket lives in: GetBucketLocation (`LocationConstraint`; empty means us-east-1,
 * `EU` eu-west-1), else HeadBucket's `x-amz-bucket-region` when GetBucketLocation is not allowed.
 * @throws StoreAccessError when neither answers
 */
export async function bucketRegion(store: S3BlobStore): Promise<string> {
  try {
    const out = await store.client.send(new (s3Sdk().GetBucketLocationCommand)({ Bucket: store.bucket }));
    const c = out.LocationConstraint as string | undefined;
    return !c ? 'us-east-1' : c === 'EU' ? 'eu-west-1' : c;
  } catch (first) {
    try {
      const out = await store.client.send(new (s3Sdk().HeadBucketCommand)({ Bucket: store.bucket }));
      if (out.BucketRegion) return out.BucketRegion;
    } catch {
      // reported below with the first error
    }
    throw new StoreAccessError(
      `cannot find the region of s3://${store.bucket} (GetBucketLocation: ${((first as Error).name || (first as Error).message) ?? String(first)}): allow s3:GetBucketLocation or check the bucket exists`,
      { cause: first },
    );
  }
}

/**
 * Refuses a region store whose bucket is in another region (before anything is copied or deployed).
 * @throws RegionStoreError naming the bucket, both regions and the fix; StoreAccessError
 */
export async function checkStoreRegion(store: S3BlobStore, region: string): Promise<void> {
  const actual = await bucketRegion(store);
  if (actual !== region)
    throw new RegionStoreError(
      `the store of region ${region} (s3://${store.bucket}) is a bucket in ${actual}: Lambda in ${region} reads code only from a bucket in ${region}; give ${region} a store in its own region (buildonce.json regions.${region}.store)`,
    );
}

/** What happened to one object of a version in a region's store. */
export type RegionObjectStatus = 'present' | 'copied' | 'would-copy';

/** What {@link ensureRegionCopy} did for one region. */
export interface RegionCopyResult {
  region: string;
  /** `present`: every object was there and verified; `copied`: at least one was copied and verified; `would-copy`: dry run */
  status: RegionObjectStatus;
  /** file name → what happened to it (artifact files, then provenance, then manifest.json) */
  objects: { file: string; status: RegionObjectStatus; method?: 'CopyObject' | 'UploadPartCopy'; bytes: number }[];
}

export interface RegionCopyRequest {
  /** the home store the version was published to and verified in */
  home: S3BlobStore;
  /** the region's store */
  replica: S3BlobStore;
  region: string;
  project: ProjectName;
  version: Version;
  namespace: ArtifactNamespace;
  /** the stored manifest promotion verified against every home file (verifyArtifactFiles) */
  stored: StoredManifest;
  /**
   * file name → composite SHA256 of the verified bytes of each multipart home file, in its parts
   * (verifyArtifactFiles): a multipart replica carrying it is verified by HEAD alone; without it the
   * replica is read back through sha256
   */
  composites?: Readonly<Record<string, VerifiedComposite>>;
  dryRun?: boolean;
  log: (line: string) => void;
  /** bytes; default {@link REGION_COPY_MULTIPART_THRESHOLD} */
  multipartThreshold?: number;
  /** bytes (>= 5 MiB); default: the home object's own part size when it is a multipart object, else {@link REGION_COPY_PART_SIZE} */
  partSize?: number;
  /** parts in flight; default {@link REGION_COPY_PARTS_IN_FLIGHT} */
  concurrency?: number;
}

/**
 * Makes sure a region's store holds a verified version under the same keys as the home store: every
 * artifact file, then the signed provenance (when the home store has one), then `manifest.json` last
 * (so a region can be audited on its own, and a visible manifest still means a complete version).
 * Per object: HeadObject with `ChecksumMode: ENABLED` in the region; present → its size and sha256
 * must equal the manifest's (one HEAD when S3 has the full-object checksum); missing → CopyObject
 * (below `multipartThreshold`) or CreateMultipartUpload + UploadPartCopy + CompleteMultipartUpload,
 * create-only (`If-None-Match: *`), from exactly the home object verified (`x-amz-copy-source-if-match`
 * its ETag), with `ChecksumAlgorithm: SHA256`, then verified the same way. A multipart replica (composite
 * checksum only) must carry the composite of the verified bytes (`composites`), else it is read back through sha256. Amazon S3 API: HeadObject, CopyObject, UploadPartCopy.
 * @throws RegionReplicaMismatchError when an object in the region differs (never overwritten);
 *   ArtifactNotFoundError-like StoreAccessError when a home object vanished; StoreAccessError
 */
export async function ensureRegionCopy(r: RegionCopyRequest): Promise<RegionCopyResult> {
  const objects: RegionCopyResult['objects'] = [];
  const key = (file: string) => artifactKey(r.project, r.version, file, r.namespace);
  for (const f of r.stored.manifest.files) {
    objects.push(await ensureObject(r, key(f.name), f.name, { size: f.size, sha256: f.sha256, composite: r.composites?.[f.name] }));
  }
  for (const file of [PROVENANCE_FILE, STORED_MANIFEST_FILE]) {
    const got = await r.home.getBytes(key(file));
    if (!got) {
      if (file === STORED_MANIFEST_FILE) throw new StoreAccessError(`${r.home.uriOf(key(file))} vanished during the promotion: retry`);
      continue;
    }
    objects.push(await ensureObject(r, key(file), file, { size: got.bytes.length, sha256: sha256Bytes(got.bytes).hex }));
  }
  const status: RegionObjectStatus = objects.some((o) => o.status === 'would-copy')
    ? 'would-copy'
    : objects.some((o) => o.status === 'copied')
      ? 'copied'
      : 'present';
  return { region: r.region, status, objects };
}

type Expected = { size: number; sha256: string; composite?: VerifiedComposite };

async function ensureObject(r: RegionCopyRequest, key: string, file: string, expected: Expected): Promise<RegionCopyResult['objects'][number]> {
  const where = r.replica.uriOf(key);
  const found = await r.replica.head(key);
  if (found) {
    await verifyReplica(r, key, expected, found);
    return { file, status: 'present', bytes: expected.size };
  }
  const threshold = r.multipartThreshold ?? REGION_COPY_MULTIPART_THRESHOLD;
  const method = expected.size >= threshold ? 'UploadPartCopy' : 'CopyObject';
  if (r.dryRun) {
    r.log(`dry run: would copy ${r.home.uriOf(key)} to ${where} (${r.region}, ${method}, ${expected.size} bytes)`);
    return { file, status: 'would-copy', method, bytes: expected.size };
  }
  const source = await r.home.head(key);
  if (!source) throw new StoreAccessError(`${r.home.uriOf(key)} vanished during the promotion: retry`);
  const started = Date.now();
  let used: 'CopyObject' | 'UploadPartCopy' = method;
  const created =
    method === 'CopyObject'
      ? await copyObject(r, key, source, expected.size, () => (used = 'UploadPartCopy'))
      : await copyMultipart(r, key, expected.size, partSizeFor(r, expected, source));
  // S3 may apply a conditional copy that lost a race, and S3-compatible servers may ignore the condition: the replica is verified either way
  await verifyReplica(r, key, expected);
  r.log(
    `${created ? 'copied' : 'found (written concurrently)'} ${where} (${r.region}, ${used}, ${expected.size} bytes, ${Date.now() - started} ms): sha256 verified`,
  );
  return { file, status: 'copied', method: used, bytes: expected.size };
}

/**
 * Part size of a multipart copy: the verified bytes' parts when their composite is known (so the replica's
 * composite checksum compares with it), else the home object's own parts, else the option or default.
 */
function partSizeFor(r: RegionCopyRequest, expected: Expected, source: ObjectInfo): number {
  if (r.partSize) return r.partSize;
  if (expected.composite) return expected.composite.partSize;
  const parts = source.compositeSha256?.parts;
  if (parts) for (const ps of [MULTIPART_PART_SIZE, 5 * 1024 * 1024, REGION_COPY_PART_SIZE]) if (partCount(expected.size, ps) === parts) return ps;
  return REGION_COPY_PART_SIZE;
}

function copySource(r: RegionCopyRequest, key: string): string {
  const o = r.home.s3Object(key);
  return `${o.bucket}/${o.key.split('/').map(encodeURIComponent).join('/')}`;
}

function httpStatus(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

function isPreconditionFailed(e: unknown): boolean {
  return httpStatus(e) === 412 || (e as Error)?.name === 'PreconditionFailed';
}

function failure(e: unknown, what: string): Error {
  if (e instanceof StoreAccessError || e instanceof RegionReplicaMismatchError) return e;
  const msg = ((e as Error)?.message ?? String(e)).split('\n')[0];
  return new StoreAccessError(
    `${what} failed: ${(e as Error)?.name ?? 'Error'}: ${msg}: check s3:GetObject on the home bucket and s3:PutObject on the region's bucket`,
    {
      cause: e,
    },
  );
}

/**
 * CopyObject, create-only; false when the key appeared meanwhile (412). Where S3 answers a conditional
 * CopyObject with 501 Not Implemented (buckets whose policy enforces conditional writes), the copy goes
 * through the multipart path in one part instead, whose CompleteMultipartUpload takes `If-None-Match`.
 */
async function copyObject(r: RegionCopyRequest, key: string, source: ObjectInfo, size: number, onFallback: () => void): Promise<boolean> {
  const dst = r.replica.s3Object(key);
  try {
    await r.replica.client.send(
      new (s3Sdk().CopyObjectCommand)({
        Bucket: dst.bucket,
        Key: dst.key,
        CopySource: copySource(r, key),
        ...(source.etag ? { CopySourceIfMatch: source.etag } : {}),
        IfNoneMatch: '*',
        ChecksumAlgorithm: 'SHA256',
        MetadataDirective: 'COPY',
      }),
    );
    return true;
  } catch (e) {
    if (isPreconditionFailed(e)) return false;
    if (httpStatus(e) === 501 || (e as Error)?.name === 'NotImplemented') {
      onFallback();
      return copyMultipart(r, key, size, Math.max(size, 1));
    }
    throw failure(e, `CopyObject ${r.home.uriOf(key)} → ${r.replica.uriOf(key)}`);
  }
}

/**
 * CreateMultipartUpload (SHA256) + UploadPartCopy of each `partSize` range (bounded parallel) +
 * CompleteMultipartUpload with `If-None-Match: *`; the upload is aborted on any failure.
 * @returns false when the key appeared meanwhile (412 on complete)
 */
async function copyMultipart(r: RegionCopyRequest, key: string, size: number, partSize: number): Promise<boolean> {
  const S3 = s3Sdk();
  const dst = r.replica.s3Object(key);
  const client = r.replica.client;
  let uploadId: string | undefined;
  try {
    uploadId = (await client.send(new S3.CreateMultipartUploadCommand({ Bucket: dst.bucket, Key: dst.key, ChecksumAlgorithm: 'SHA256' }))).UploadId;
    const limit = pLimit(r.concurrency ?? REGION_COPY_PARTS_IN_FLIGHT);
    const n = partCount(size, partSize);
    const parts: CompletedPart[] = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        limit(async () => {
          const start = i * partSize;
          const end = Math.min(size, start + partSize) - 1;
          const out = await client.send(
            new S3.UploadPartCopyCommand({
              Bucket: dst.bucket,
              Key: dst.key,
              UploadId: uploadId,
              PartNumber: i + 1,
              CopySource: copySource(r, key),
              CopySourceRange: `bytes=${start}-${end}`,
            }),
          );
          const c = out.CopyPartResult;
          return { PartNumber: i + 1, ETag: c?.ETag, ...(c?.ChecksumSHA256 ? { ChecksumSHA256: c.ChecksumSHA256 } : {}) };
        }),
      ),
    );
    await client.send(
      new S3.CompleteMultipartUploadCommand({ Bucket: dst.bucket, Key: dst.key, UploadId: uploadId, IfNoneMatch: '*', MultipartUpload: { Parts: parts } }),
    );
    return true;
  } catch (e) {
    if (uploadId) await client.send(new S3.AbortMultipartUploadCommand({ Bucket: dst.bucket, Key: dst.key, UploadId: uploadId })).catch(() => undefined);
    if (isPreconditionFailed(e)) return false;
    throw failure(e, `UploadPartCopy ${r.home.uriOf(key)} → ${r.replica.uriOf(key)}`);
  }
}

/**
 * Checks a replica against the verified manifest: size, then the full-object `ChecksumSHA256` when S3 has
 * one; for a multipart replica, its composite checksum against the composite of the verified bytes in the
 * same parts; otherwise (no verified composite, other parts) the replica's bytes through sha256.
 * @throws RegionReplicaMismatchError
 */
async function verifyReplica(r: RegionCopyRequest, key: string, expected: Expected, info?: ObjectInfo): Promise<void> {
  const where = r.replica.uriOf(key);
  const got = info ?? (await r.replica.head(key));
  const refuse = (seen: string) =>
    new RegionReplicaMismatchError(
      `${where} (${r.region}) ${seen}, but ${r.project}@${r.version}'s manifest says ${expected.size} bytes, sha256 ${expected.sha256}: a replica is never overwritten nor deployed; find out who wrote it, delete it, then promote again`,
    );
  if (!got) throw new StoreAccessError(`${where} is missing right after it was copied: check the bucket's lifecycle rules and retry`);
  if (got.size !== expected.size) throw refuse(`has ${got.size} bytes`);
  if (got.sha256Base64) {
    if (got.sha256Base64 !== sha256HexToBase64(expected.sha256)) throw refuse(`has sha256 ${sha256Base64ToHex(got.sha256Base64)}`);
    return;
  }
  // a composite (multipart) checksum is compared only with the composite of the bytes this promotion verified
  // (never with the home object's, which would trust the home object as it is now); in other parts, or
  // without it, the replica is read through sha256
  const c = got.compositeSha256;
  if (c && expected.composite && c.parts === expected.composite.parts && c.base64 === expected.composite.base64) return;
  const stream = await r.replica.getStream(key);
  if (!stream) throw new StoreAccessError(`${where} is missing right after it was copied: check the bucket's lifecycle rules and retry`);
  const d = await sha256Stream(stream);
  if (d.hex !== expected.sha256 || d.size !== expected.size) throw refuse(`has sha256 ${d.hex} (${d.size} bytes)`);
}
