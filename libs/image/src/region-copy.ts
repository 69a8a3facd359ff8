/**
 * Copies one image, by digest, from the registry it was published to into another registry repository
 * (a region's registry): OCI distribution spec v1.1 (https://github.com/opencontainers/distribution-spec/blob/main/spec.md),
 * "Pulling manifests" / "Pulling blobs" on the source, "Checking if content exists in the registry",
 * "Mounting a blob from another repository", "Pushing a blob monolithically" (POST then PUT `?digest=`)
 * and "Pushing Manifests" (by digest) on the destination. No tag is written: deploys are by digest.
 */
import pLimit from 'p-limit';
import { imageIndexSchema, imageManifestSchema, MEDIA_DOCKER_LIST, MEDIA_OCI_INDEX, type Descriptor } from './oci';
import { ImageIntegrityError, RegistryError } from './errors';
import { noImageTransfers, type ImageTransferCounts, type ImageTransferOptions } from './push';
import type { RegistryClient } from './registry';

/** One manifest of the image as read from the source (the image manifest, or an index and its children). */
interface CopiedManifest {
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

export interface ImageRegionCopyOptions extends ImageTransferOptions {
  /** client of the registry the image was published to */
  source: RegistryClient;
  /** repository path in the source registry (the stored record's repository, without the host) */
  sourceRepository: string;
  /** the verified image digest (`sha256:…`, the stored manifest's `image.digest`) */
  digest: string;
  /** client of the destination registry (the region's), with its own credentials */
  destination: RegistryClient;
  /** repository path in the destination registry */
  destinationRepository: string;
}

/**
 * What a copy did (or, dry run, would do): blobs are streamed from the source (dry run: would stream, or
 * mount on the same host).
 */
export interface ImageRegionCopyResult extends ImageTransferCounts {
  /** `present`: the destination already serves the digest (nothing read from the source) */
  status: 'present' | 'copied' | 'dry-run';
  /** `<destination host>/<repo>@sha256:…` */
  uri: string;
}

function isIndex(mediaType: string): boolean {
  return mediaType === MEDIA_OCI_INDEX || mediaType === MEDIA_DOCKER_LIST;
}

/**
 * Reads the manifest `digest` and, for an index, every child manifest, each by digest: the bytes must
 * hash to the digest they were asked by (RegistryClient.getManifest), so what is copied is exactly what
 * the promotion verified. @returns the manifests children first, and every blob (config + layers) once
 */
async function readImage(client: RegistryClient, repo: string, digest: string): Promise<{ manifests: CopiedManifest[]; blobs: Descriptor[] }> {
  const manifests: CopiedManifest[] = [];
  const blobs = new Map<string, Descriptor>();
  const visit = async (d: string): Promise<void> => {
    const m = await client.getManifest(repo, d);
    const json = JSON.parse(m.bytes.toString('utf8')) as unknown;
    if (isIndex(m.mediaType)) {
      const index = imageIndexSchema.parse(json);
      for (const child of index.manifests) await visit(child.digest);
    } else {
      const parsed = imageManifestSchema.safeParse(json);
      if (!parsed.success) throw new RegistryError(`manifest ${client.registry}/${repo}@${d} (${m.mediaType}) is not an image manifest or index`);
      for (const b of [parsed.data.config, ...parsed.data.layers]) if (!blobs.has(b.digest)) blobs.set(b.digest, b);
    }
    manifests.push({ digest: d, mediaType: m.mediaType, bytes: m.bytes });
  };
  await visit(digest);
  return { manifests, blobs: [...blobs.values()] };
}

/**
 * Makes `destinationRepository` in the destination registry hold exactly the image `digest` of the source:
 * 1. HEAD the manifest by digest in the destination: served with that `Docker-Content-Digest` → `present`.
 * 2. GET the manifest by digest from the source (and, for an index, each child by digest); each must hash
 *    to its digest ({@link ImageIntegrityError} otherwise: nothing is written).
 * 3. Each blob (configs, layers): HEAD in the destination; missing → cross-repository mount when both are
 *    the same registry host, else the source's blob GET streamed into a monolithic upload (the destination
 *    checks the digest; a layer is never held in memory); {@link ImageRegionCopyOptions.concurrency} at once.
 * 4. PUT child manifests, then the manifest, by digest with their exact bytes and media type; then HEAD
 *    it: the destination must report the digest.
 * Dry run: steps 1–3 read-only, each copy logged, nothing written.
 * @throws ImageIntegrityError (source bytes or destination digest differ), ImageNotFoundError (not in the
 *   source), RegistryError / RegistryAuthError
 */
export async function copyImageToRegistry(o: ImageRegionCopyOptions): Promise<ImageRegionCopyResult> {
  const log = o.log ?? (() => undefined);
  const dst = o.destination;
  const uri = `${dst.registry}/${o.destinationRepository}@${o.digest}`;
  const r: ImageRegionCopyResult = { status: 'copied', uri, ...noImageTransfers() };
  const there = await dst.headManifest(o.destinationRepository, o.digest);
  if (there) {
    if (there.digest !== o.digest) throw new ImageIntegrityError(`${uri}: the registry reports digest ${there.digest} for it: check the registry`);
    return { ...r, status: 'present' };
  }
  const img = await readImage(o.source, o.sourceRepository, o.digest);
  const from = `${o.source.registry}/${o.sourceRepository}`;
  const mountFrom = o.source.registry === dst.registry && o.sourceRepository !== o.destinationRepository ? o.sourceRepository : undefined;
  const missing: Descriptor[] = [];
  for (const b of img.blobs) {
    if ((await dst.headBlob(o.destinationRepository, b.digest)) !== undefined) r.blobsExisting++;
    else missing.push(b);
  }
  if (o.dryRun) {
    for (const b of missing)
      log(
        `dry run: would ${mountFrom ? 'mount' : 'copy'} blob ${b.digest.slice(0, 19)} (${b.size} bytes) from ${from} to ${dst.registry}/${o.destinationRepository}`,
      );
    log(`dry run: would put ${img.manifests.length} manifest(s) of ${uri}`);
    if (mountFrom) r.blobsMounted = missing.length;
    else r.blobsUploaded = missing.length;
    r.bytesUploaded = mountFrom ? 0 : missing.reduce((s, b) => s + b.size, 0);
    r.manifestsPut = img.manifests.length;
    return { ...r, status: 'dry-run' };
  }
  const limit = pLimit(Math.max(1, o.concurrency ?? 3));
  await Promise.all(
    missing.map((b) =>
      limit(async () => {
        const how = await dst.pushBlob(o.destinationRepository, b.digest, b.size, () => o.source.getBlob(o.sourceRepository, b.digest), mountFrom);
        if (how === 'mounted') r.blobsMounted++;
        else {
          r.blobsUploaded++;
          r.bytesUploaded += b.size;
        }
      }),
    ),
  );
  for (const m of img.manifests) {
    await dst.putManifest(o.destinationRepository, m.digest, m.bytes, m.mediaType);
    r.manifestsPut++;
  }
  const now = await dst.headManifest(o.destinationRepository, o.digest);
  if (now?.digest !== o.digest)
    throw new ImageIntegrityError(`${uri} was put but the registry serves ${now?.digest ?? 'nothing'} under it: check the registry`);
  log(
    `copied ${from}@${o.digest.slice(0, 19)} to ${dst.registry}/${o.destinationRepository} (${r.blobsUploaded} blob(s) streamed, ${r.bytesUploaded} bytes; ${r.blobsMounted} mounted; ${r.blobsExisting} already there)`,
  );
  return r;
}
