import { join } from 'node:path';
import pLimit from 'p-limit';
import { ArtifactConflictError } from '@buildonce/store';
import { BASE_NAME_ANNOTATION } from './assemble';
import { blobPath, readLayoutImage } from './layout';
import { parseImageReference, repositoryUri, imageUriByDigest, isValidTag, type ImageReference } from './reference';
import type { RegistryClient } from './registry';
import { ImageConfigError } from './errors';

export interface PushImageOptions extends ImageTransferOptions {
  /** OCI image layout directory (`<outDir>/oci`) */
  layoutDir: string;
  /** target repository (no tag, no digest) */
  target: ImageReference;
  client: RegistryClient;
  /** tags to point at the image; each must be absent or already point at this digest */
  tags: string[];
}

/** How an image's blobs and manifests are sent to a registry (a push, a region copy). */
export interface ImageTransferOptions {
  /** list what would be sent, write nothing */
  dryRun?: boolean;
  /** blobs sent at once (default 3) */
  concurrency?: number;
  log?: (line: string) => void;
}

/** What sending an image to a registry did (or, dry run, would do), counted per request kind. Sizes in bytes. */
export interface ImageTransferCounts {
  /** manifest PUTs (by digest, per tag, an index with its children) */
  manifestsPut: number;
  /** blobs uploaded (streamed) and their bytes */
  blobsUploaded: number;
  bytesUploaded: number;
  /** blobs mounted from another repository of the same registry */
  blobsMounted: number;
  /** blobs the registry already had (HEAD answered) */
  blobsExisting: number;
}

/** Counts of a transfer that has sent nothing yet. */
export function noImageTransfers(): ImageTransferCounts {
  return { manifestsPut: 0, blobsUploaded: 0, bytesUploaded: 0, blobsMounted: 0, blobsExisting: 0 };
}

/** What a push did (or, dry run, would do). */
export interface PushImageResult extends ImageTransferCounts {
  status: 'pushed' | 'already-pushed' | 'dry-run';
  digest: string;
  /** `<host>/<repo>@sha256:…` */
  uri: string;
  tags: string[];
}

/**
 * Pushes an image layout to a registry (OCI distribution spec "push"): first every tag is checked
 * (HEAD manifest) — a tag that points at another digest is an {@link ArtifactConflictError} before
 * anything is written; then each blob is HEAD-checked and only missing ones are sent (cross-repository
 * mount from the base image's repository when it lives on the same registry, else a monolithic
 * upload); then the manifest is PUT by digest and by each tag not already pointing at it, and each tag
 * is read back (a concurrent publisher that moved it is a conflict, never silently overwritten).
 * @throws ArtifactConflictError for a tag on another digest; RegistryError/RegistryAuthError; ImageIntegrityError
 */
export async function pushImage(o: PushImageOptions): Promise<PushImageResult> {
  const log = o.log ?? (() => undefined);
  if (o.target.tag || o.target.digest) throw new ImageConfigError(`registry "${repositoryUri(o.target)}" must name a repository without a tag or digest`);
  for (const t of o.tags) if (!isValidTag(t)) throw new ImageConfigError(`tag "${t}" is not a valid OCI tag`);
  const img = await readLayoutImage(o.layoutDir);
  const repo = o.target.repository;
  const digest = img.manifestDescriptor.digest;
  const uri = imageUriByDigest(o.target, digest);
  const r: PushImageResult = {
    status: 'pushed',
    digest,
    uri,
    tags: o.tags,
    ...noImageTransfers(),
  };

  const tagsToPut: string[] = [];
  for (const tag of o.tags) {
    const cur = await o.client.headManifest(repo, tag);
    if (cur && cur.digest !== digest) throw new ArtifactConflictError(`${repositoryUri(o.target)}:${tag}`, cur.digest, digest);
    if (!cur) tagsToPut.push(tag);
  }

  const baseName = img.manifest.annotations?.[BASE_NAME_ANNOTATION];
  let mountFrom: string | undefined;
  if (baseName) {
    try {
      const b = parseImageReference(baseName);
      if (b.registry === o.target.registry && b.repository !== repo) mountFrom = b.repository;
    } catch {
      /* annotation is informational */
    }
  }

  const missing: typeof img.blobs = [];
  for (const b of img.blobs) {
    if ((await o.client.headBlob(repo, b.digest)) !== undefined) r.blobsExisting++;
    else missing.push(b);
  }
  const manifestThere = await o.client.headManifest(repo, digest);
  if (o.dryRun) {
    for (const b of missing) log(`dry run: would upload blob ${b.digest.slice(0, 19)} (${b.size} bytes)`);
    r.blobsUploaded = missing.length;
    r.bytesUploaded = missing.reduce((s, b) => s + b.size, 0);
    r.manifestsPut = (manifestThere ? 0 : 1) + tagsToPut.length;
    return { ...r, status: 'dry-run' };
  }
  const limit = pLimit(Math.max(1, o.concurrency ?? 3));
  await Promise.all(
    missing.map((b) =>
      limit(async () => {
        const how = await o.client.pushBlob(repo, b.digest, b.size, blobPath(o.layoutDir, b.digest), mountFrom);
        if (how === 'mounted') {
          r.blobsMounted++;
          log(`mounted blob ${b.digest.slice(0, 19)} from ${mountFrom}`);
        } else {
          r.blobsUploaded++;
          r.bytesUploaded += b.size;
          log(`uploaded blob ${b.digest.slice(0, 19)} (${b.size} bytes)`);
        }
      }),
    ),
  );
  if (!manifestThere) {
    await o.client.putManifest(repo, digest, img.manifestBytes, img.manifestDescriptor.mediaType);
    r.manifestsPut++;
  }
  for (const tag of tagsToPut) {
    await o.client.putManifest(repo, tag, img.manifestBytes, img.manifestDescriptor.mediaType);
    r.manifestsPut++;
    const now = await o.client.headManifest(repo, tag);
    if (!now || now.digest !== digest) throw new ArtifactConflictError(`${repositoryUri(o.target)}:${tag}`, now?.digest, digest);
    log(`tagged ${repositoryUri(o.target)}:${tag}`);
  }
  if (r.blobsUploaded + r.blobsMounted + r.manifestsPut === 0) r.status = 'already-pushed';
  return r;
}

/** Layout directory of a build output directory. */
export function layoutDirOf(outputDir: string): string {
  return join(outputDir, 'oci');
}
