import { randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { hostname } from 'node:os';
import {
  parseStoredManifestJson,
  sameFiles,
  serializeManifest,
  sha256Base64ToHex,
  sha256Stream,
  type Manifest,
  type PublishMetadata,
  type RegistryRecord,
  type StoredManifest,
} from '@buildonce/artifact';
import type { BlobStore, ProgressFn } from './blob';
import { ArtifactConflictError, ArtifactIntegrityError, ArtifactNotFoundError } from './errors';
import { artifactKey, provenanceKey, storedManifestKey, versionPrefix, type ArtifactNamespace } from './keys';
import { MULTIPART_PART_SIZE } from './s3-blob';
import { compositeSha256, digestFile, digestStream, partCount, type FileDigests } from './multipart';
import type { ProjectName, Version } from '@buildonce/values';

/** Result of checking one stored object against its manifest entry. */
export type VerifyResult =
  { ok: true; method: 'checksum' | 'composite' | 'rehash'; composite?: VerifiedComposite } | { ok: false; reason: string; sha256?: string };

/**
 * The S3 composite SHA256 (Amazon S3 User Guide, "Checking object integrity", multipart checksums) of bytes
 * that were just verified against a manifest's sha256, in the part size of the stored multipart object they
 * came from: what a copy of that object made in the same parts must carry, so the copy is verified by one HEAD.
 */
export interface VerifiedComposite {
  /** base64, without the `-<parts>` suffix */
  base64: string;
  parts: number;
  /** bytes */
  partSize: number;
}

/**
 * The S3 composite SHA256 checksum a multipart upload of `path` in `partSize`-byte parts gets
 * (base64 sha256 of the concatenated raw part digests; Amazon S3 User Guide, "Checking object
 * integrity", multipart checksums), computed in one streamed pass.
 * @returns base64 digest (no `-<parts>` suffix) and the number of parts
 */
export async function compositeSha256OfFile(path: string, partSize: number): Promise<{ base64: string; parts: number }> {
  const d = await digestFile(path, partSize);
  return { base64: compositeSha256(d.parts), parts: d.parts.length };
}

/** Part sizes (bytes) buildonce has uploaded multipart objects with: today's, and the 5 MiB of earlier releases. */
const KNOWN_PART_SIZES = [MULTIPART_PART_SIZE, 5 * 1024 * 1024];

/**
 * Checks a stored object against an expected size (bytes) and sha256 (hex). Uses the full-object
 * S3 `ChecksumSHA256` from HeadObject when the store has one; for a multipart object and a local copy
 * already checked against `expected` (`local`: its {@link FileDigests} from that check, as when
 * publishing, or its path), compares the composite checksum with the one from the local part digests
 * (no download); otherwise (filesystem, no local copy) streams the stored bytes through sha256.
 */
export async function verifyObject(
  store: BlobStore,
  key: string,
  expected: { size: number; sha256: string },
  local?: string | FileDigests,
): Promise<VerifyResult> {
  const info = await store.head(key);
  if (!info) return { ok: false, reason: `${store.uriOf(key)} is missing` };
  if (info.size !== expected.size) return { ok: false, reason: `${store.uriOf(key)} has ${info.size} bytes, manifest says ${expected.size}` };
  if (info.sha256Base64) {
    const hex = sha256Base64ToHex(info.sha256Base64);
    return hex === expected.sha256
      ? { ok: true, method: 'checksum' }
      : { ok: false, reason: `${store.uriOf(key)} has sha256 ${hex}, manifest says ${expected.sha256}`, sha256: hex };
  }
  const composite = info.compositeSha256;
  // the part size the stored object was uploaded in (its composite checksum is over parts of that size)
  const storedPartSize = composite && KNOWN_PART_SIZES.find((ps) => partCount(expected.size, ps) === composite.parts);
  if (composite && local) {
    const partSize = typeof local !== 'string' && partCount(expected.size, local.partSize) === composite.parts ? local.partSize : storedPartSize;
    if (partSize) {
      const d = typeof local === 'string' ? await digestFile(local, partSize).catch(() => undefined) : local.partSize === partSize ? local : undefined;
      if (d && d.sha256Hex === expected.sha256 && compositeSha256(d.parts) === composite.base64)
        return { ok: true, method: 'composite', composite: { base64: composite.base64, parts: composite.parts, partSize } };
    }
  }
  const stream = await store.getStream(key);
  if (!stream) return { ok: false, reason: `${store.uriOf(key)} is missing` };
  // reading the bytes anyway: their composite in the stored object's parts comes with the same pass
  const d = storedPartSize
    ? await digestStream(stream, storedPartSize)
    : await sha256Stream(stream).then((h) => ({ sha256Hex: h.hex, size: h.size, parts: [] }));
  if (d.sha256Hex !== expected.sha256 || d.size !== expected.size)
    return { ok: false, reason: `${store.uriOf(key)} has sha256 ${d.sha256Hex}, manifest says ${expected.sha256}`, sha256: d.sha256Hex };
  return storedPartSize
    ? { ok: true, method: 'rehash', composite: { base64: compositeSha256(d.parts), parts: d.parts.length, partSize: storedPartSize } }
    : { ok: true, method: 'rehash' };
}

/** Reads `manifest.json` of a version; undefined when the version is not (completely) published. @throws ManifestError */
export async function readStoredManifest(
  store: BlobStore,
  project: ProjectName,
  version: Version,
  namespace: ArtifactNamespace = 'trusted',
): Promise<StoredManifest | undefined> {
  const key = storedManifestKey(project, version, namespace);
  const got = await store.getBytes(key);
  return got ? parseStoredManifestJson(got.bytes.toString('utf8'), store.uriOf(key)) : undefined;
}

/** A version whose stored files were all just verified, and the composite checksums of the multipart ones. */
export interface VerifiedFiles {
  stored: StoredManifest;
  /** file name → composite SHA256 of its verified bytes in the stored object's parts (multipart objects only) */
  composites: Readonly<Record<string, VerifiedComposite>>;
}

/**
 * Confirms a published version is complete: the stored manifest exists and every file is present
 * with the manifest's size and sha256 (docs/architecture.md invariant 2: a pointer never names a version whose
 * files are not all present and verified).
 * @throws ArtifactNotFoundError when the manifest is missing; ArtifactIntegrityError naming the first bad file
 */
export async function verifyArtifact(
  store: BlobStore,
  project: ProjectName,
  version: Version,
  namespace: ArtifactNamespace = 'trusted',
): Promise<StoredManifest> {
  return (await verifyArtifactFiles(store, project, version, namespace)).stored;
}

/**
 * {@link verifyArtifact}, also returning the composite SHA256 of each multipart file's verified bytes (computed
 * in the same read that verified them), so copies of those objects can be checked against the verified bytes
 * by HeadObject alone.
 * @throws ArtifactNotFoundError when the manifest is missing; ArtifactIntegrityError naming the first bad file
 */
export async function verifyArtifactFiles(
  store: BlobStore,
  project: ProjectName,
  version: Version,
  namespace: ArtifactNamespace = 'trusted',
): Promise<VerifiedFiles> {
  const stored = await readStoredManifest(store, project, version, namespace);
  if (!stored) {
    throw new ArtifactNotFoundError(
      `version ${version} of ${project} is not in ${store.uriOf(versionPrefix(project, version, namespace))}: publish it first (nx run ${project}:publish)`,
    );
  }
  const composites: Record<string, VerifiedComposite> = {};
  for (const f of stored.manifest.files) {
    const r = await verifyObject(store, artifactKey(project, version, f.name, namespace), f);
    if (!r.ok) throw new ArtifactIntegrityError(`artifact ${project}@${version} failed verification: ${r.reason}`);
    if (r.composite) composites[f.name] = r.composite;
  }
  return { stored, composites };
}

/** Publish metadata from the CI environment (GitHub Actions variables); local runs are trusted local builds. */
export function publishMetadataFromEnv(env: NodeJS.ProcessEnv = process.env, now = new Date()): PublishMetadata {
  const prFromRef = /^refs\/pull\/(\d+)\//.exec(env.GITHUB_REF ?? '')?.[1];
  const pr = env.BUILDONCE_PR || prFromRef || undefined;
  const isPr = !!pr || env.GITHUB_EVENT_NAME === 'pull_request' || env.GITHUB_EVENT_NAME === 'pull_request_target';
  const meta: PublishMetadata = {
    publishedAt: now.toISOString(),
    builder: env.GITHUB_ACTIONS === 'true' ? `github-actions:${env.GITHUB_REPOSITORY ?? 'unknown'}` : `local:${hostname()}`,
    trusted: !isPr,
  };
  const opt = { commit: env.GITHUB_SHA, branch: env.GITHUB_HEAD_REF || env.GITHUB_REF_NAME, runId: env.GITHUB_RUN_ID, pr, actor: env.GITHUB_ACTOR || env.USER };
  for (const [k, v] of Object.entries(opt)) if (v) (meta as Record<string, unknown>)[k] = v;
  return meta;
}

/** What publishing did (or, with dryRun, would do). */
export interface PublishResult {
  /** `repaired`: the manifest existed but files were missing; they were uploaded again (create-only) */
  status: 'published' | 'already-published' | 'repaired' | 'dry-run';
  /** URI of the version's folder, e.g. `s3://bucket/prefix/artifacts/rust-scorer/123/` */
  uri: string;
  /** files uploaded (or that would be uploaded), with sizes in bytes */
  uploaded: { name: string; size: number }[];
  /** files that were already stored with identical bytes */
  reused: string[];
}

export interface PublishOptions {
  store: BlobStore;
  manifest: Manifest;
  /** directory holding the manifest's files */
  dir: string;
  metadata: PublishMetadata;
  /** oci-image only: where the image was pushed (recorded in `manifest.json`) */
  registry?: RegistryRecord;
  namespace?: ArtifactNamespace;
  dryRun?: boolean;
  /** one line per step */
  log?: (line: string) => void;
  onProgress?: (file: string, loaded: number, total: number) => void;
  /**
   * Produces the version's signed provenance (DSSE envelope bytes) once every file is stored and
   * verified; it is written create-only before `manifest.json`. Not called for already-published
   * versions or dry runs; undefined = the version is published unsigned.
   */
  provenance?: () => Promise<Uint8Array | undefined>;
}

/**
 * Publishes a built version immutably (docs/architecture.md "Store layout"): checks the local files against
 * the manifest, uploads each missing file create-only, confirms each stored object's size and
 * sha256 (HeadObject with checksums), writes the signed provenance (when `provenance` gives one),
 * then writes `manifest.json` last, so a visible manifest means a complete version. An existing version with identical checksums is `already-published` and
 * nothing is uploaded when every stored file still matches (HEAD: size + checksum); files gone since are
 * uploaded again create-only (`repaired`); with different checksums it throws and nothing changes. While
 * it runs a lease object (`publish+<uuid>.publish-lease` in the version's folder) keeps retention away,
 * and after the manifest write every file is checked again (re-published up to 3 times if deleted concurrently).
 * @throws ArtifactIntegrityError when a local file is missing or differs from the manifest
 * @throws ArtifactConflictError when the version exists with different bytes
 * @throws StoreAccessError for store problems (bucket, credentials)
 */
export async function publishArtifact(opts: PublishOptions): Promise<PublishResult> {
  const { store, manifest, namespace = 'trusted', log = () => undefined } = opts;
  if (opts.dryRun) return publishOnce(opts);
  // a lease object tells retention a publish is completing this version (see PUBLISH_LEASE_SUFFIX)
  const leaseKey = artifactKey(manifest.project, manifest.version, `publish+${randomUUID()}${PUBLISH_LEASE_SUFFIX}`, namespace);
  await store.putBytesIfAbsent(leaseKey, Buffer.from(JSON.stringify({ startedAt: new Date().toISOString(), host: hostname() }) + '\n'), {
    contentType: 'application/json',
  });
  try {
    for (let attempt = 1; ; attempt++) {
      const result = await publishOnce(opts);
      // a visible manifest must mean a complete version: re-check after writing (a retention run that
      // listed before our lease may have deleted files we had found present)
      const gone = await firstIncomplete(store, manifest, namespace);
      if (!gone) return result;
      if (attempt >= 3)
        throw new ArtifactIntegrityError(
          `${gone} after publishing version ${manifest.version} ${attempt} times (files deleted concurrently, e.g. by retention): publish again`,
        );
      log(`${gone} after publishing (deleted concurrently?): publishing again`);
    }
  } finally {
    await store.delete(leaseKey).catch(() => undefined); // an expired lease left behind only delays retention
  }
}

/** Suffix of the lease objects a running publish keeps in a version's folder; retention keeps a version with a lease younger than an hour. */
export const PUBLISH_LEASE_SUFFIX = '.publish-lease';

/** True for a publish lease object name (never a manifest file name: `+` is not allowed there). */
export function isPublishLease(file: string): boolean {
  return file.startsWith('publish+') && file.endsWith(PUBLISH_LEASE_SUFFIX);
}

/** The first reason the stored version is not complete (manifest missing, a file missing or different), else undefined. */
async function firstIncomplete(store: BlobStore, manifest: Manifest, namespace: ArtifactNamespace): Promise<string | undefined> {
  const mkey = storedManifestKey(manifest.project, manifest.version, namespace);
  if (!(await store.head(mkey))) return `${store.uriOf(mkey)} is missing`;
  for (const f of manifest.files) {
    const key = artifactKey(manifest.project, manifest.version, f.name, namespace);
    const info = await store.head(key);
    if (!info) return `${store.uriOf(key)} is missing`;
    if (info.size !== f.size) return `${store.uriOf(key)} has ${info.size} bytes, manifest says ${f.size}`;
  }
  return undefined;
}

/**
 * A version whose manifest exists: every file is checked against the manifest (HEAD: size and
 * checksum, else a rehash). Missing files are uploaded again create-only (`repaired`); a present file
 * with other bytes cannot be overwritten (immutable) and is refused naming the repair.
 */
async function repairPublished(opts: PublishOptions, uri: string): Promise<PublishResult> {
  const { store, manifest, dir, namespace = 'trusted', log = () => undefined } = opts;
  const { project, version } = manifest;
  const missing: typeof manifest.files = [];
  const reused: string[] = [];
  for (const f of manifest.files) {
    const key = artifactKey(project, version, f.name, namespace);
    if (!(await store.head(key))) {
      missing.push(f);
      continue;
    }
    const check = await verifyObject(store, key, f, join(dir, f.name));
    if (!check.ok) {
      throw new ArtifactIntegrityError(
        `version ${version} of ${project} is published but ${check.reason}: stored objects are never overwritten; delete ${store.uriOf(key)} and publish again to restore it`,
      );
    }
    reused.push(f.name);
  }
  if (!missing.length) return { status: 'already-published', uri, uploaded: [], reused };
  const uploaded = missing.map((f) => ({ name: f.name, size: f.size }));
  if (opts.dryRun) return { status: 'dry-run', uri, uploaded, reused };
  log(`version ${version} is published but ${missing.length} file(s) are missing (${missing.map((f) => f.name).join(', ')}): uploading them again`);
  for (const f of missing) {
    const key = artifactKey(project, version, f.name, namespace);
    const onProgress: ProgressFn | undefined = opts.onProgress ? (l, t) => opts.onProgress!(f.name, l, t) : undefined;
    const put = await store.putFileIfAbsent(key, join(dir, f.name), { sha256Hex: f.sha256, size: f.size, onProgress });
    const check = await verifyObject(store, key, f, join(dir, f.name));
    if (!check.ok) {
      if (put === 'exists') throw new ArtifactConflictError(store.uriOf(key), check.sha256, f.sha256);
      throw new ArtifactIntegrityError(`upload of ${store.uriOf(key)} did not verify: ${check.reason}`);
    }
    log(`uploaded ${store.uriOf(key)} (${formatBytes(f.size)}, repair)`);
  }
  return { status: 'repaired', uri, uploaded, reused };
}

/** One pass of {@link publishArtifact} (no lease, no re-check). */
async function publishOnce(opts: PublishOptions): Promise<PublishResult> {
  const { store, manifest, dir, namespace = 'trusted', log = () => undefined } = opts;
  const { project, version } = manifest;
  const uri = store.uriOf(versionPrefix(project, version, namespace));

  // one read per file: its sha256 (checked against the manifest) and its multipart part digests (sent with the parts)
  const digests = new Map<string, FileDigests>();
  for (const f of manifest.files) {
    const path = join(dir, f.name);
    const st = await stat(path).catch(() => undefined);
    if (!st) throw new ArtifactIntegrityError(`build output ${path} is missing: run nx run ${project}:build first`);
    const d = await digestFile(path, MULTIPART_PART_SIZE);
    if (d.sha256Hex !== f.sha256 || d.size !== f.size) {
      throw new ArtifactIntegrityError(
        `build output ${path} (sha256 ${d.sha256Hex}, ${d.size} bytes) does not match its manifest: rebuild with nx run ${project}:build --skip-nx-cache`,
      );
    }
    digests.set(f.name, d);
  }

  const existing = await readStoredManifest(store, project, version, namespace);
  if (existing) {
    if (!sameFiles(existing.manifest, manifest)) throw conflictFor(store, existing.manifest, manifest, namespace);
    return repairPublished(opts, uri);
  }

  const uploaded: PublishResult['uploaded'] = [];
  const reused: string[] = [];
  if (opts.dryRun) {
    for (const f of manifest.files) {
      const key = artifactKey(project, version, f.name, namespace);
      if (await store.head(key)) reused.push(f.name);
      else uploaded.push({ name: f.name, size: f.size });
    }
    return { status: 'dry-run', uri, uploaded, reused };
  }

  for (const f of manifest.files) {
    const key = artifactKey(project, version, f.name, namespace);
    const onProgress: ProgressFn | undefined = opts.onProgress ? (l, t) => opts.onProgress!(f.name, l, t) : undefined;
    const put = await store.putFileIfAbsent(key, join(dir, f.name), { sha256Hex: f.sha256, size: f.size, onProgress, digests: digests.get(f.name), log });
    const check = await verifyObject(store, key, f, digests.get(f.name));
    if (!check.ok) {
      if (put === 'exists') throw new ArtifactConflictError(store.uriOf(key), check.sha256, f.sha256);
      throw new ArtifactIntegrityError(`upload of ${store.uriOf(key)} did not verify: ${check.reason}`);
    }
    if (put === 'created') {
      uploaded.push({ name: f.name, size: f.size });
      log(`uploaded ${store.uriOf(key)} (${formatBytes(f.size)})`);
    } else {
      reused.push(f.name);
      log(`already stored ${store.uriOf(key)} (identical sha256)`);
    }
  }

  const envelope = opts.provenance ? await opts.provenance() : undefined;
  if (envelope) {
    // create-only, before the manifest: a visible manifest means the provenance is there too. An
    // existing envelope is an earlier attempt of this version's publish (files are identical) and stays.
    const key = provenanceKey(project, version, namespace);
    const put = await store.putBytesIfAbsent(key, envelope, { contentType: 'application/json' });
    log(put === 'created' ? `wrote ${store.uriOf(key)}` : `kept ${store.uriOf(key)} (written by an earlier attempt)`);
  }

  const stored: StoredManifest = { manifest, publish: opts.metadata, ...(opts.registry ? { registry: opts.registry } : {}) };
  const manifestKey = storedManifestKey(project, version, namespace);
  const put = await store.putBytesIfAbsent(manifestKey, Buffer.from(serializeManifest(stored)), { contentType: 'application/json' });
  if (put === 'exists') {
    const winner = await readStoredManifest(store, project, version, namespace);
    if (winner && !sameFiles(winner.manifest, manifest)) throw conflictFor(store, winner.manifest, manifest, namespace);
    return { status: 'already-published', uri, uploaded, reused };
  }
  log(`wrote ${store.uriOf(manifestKey)}`);
  return { status: 'published', uri, uploaded, reused };
}

function conflictFor(store: BlobStore, stored: Manifest, mine: Manifest, namespace: ArtifactNamespace): ArtifactConflictError {
  const diff = mine.files.find((f) => !stored.files.some((s) => s.name === f.name && s.sha256 === f.sha256 && s.size === f.size)) ?? mine.files[0]!;
  const theirs = stored.files.find((s) => s.name === diff.name);
  return new ArtifactConflictError(store.uriOf(artifactKey(mine.project, mine.version, diff.name, namespace)), theirs?.sha256, diff.sha256);
}

/** Human-readable byte count: `2.1 MB`, `640 B` (decimal units, 1 decimal). */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let i = -1;
  do {
    v /= 1000;
    i++;
  } while (v >= 1000 && i < units.length - 1);
  return `${v.toFixed(1)} ${units[i]}`;
}
