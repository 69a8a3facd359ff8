import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, open, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DEPLOYED_MANIFEST_PATH,
  STORED_MANIFEST_FILE,
  extractTarGz,
  parseStoredManifestJson,
  serializeManifest,
  TarballError,
  type StoredManifest,
} from '@buildonce/artifact';
import {
  ArtifactIntegrityError,
  ArtifactNotFoundError,
  artifactKey,
  parseArtifactKey,
  projectArtifactsPrefix,
  storedManifestKey,
  type ArtifactNamespace,
  type BlobStore,
} from '@buildonce/store';
import { BuildonceError } from '@buildonce/errors';
import { isVersion, type ProjectName, type Version } from '@buildonce/values';

/*
 * Install layout, shared byte for byte with apps/express-api/deploy/user-data.sh:
 *
 *   <root>/releases/<version>/                     the unpacked artifact (node-tarball), or its files as-is
 *   <root>/releases/<version>/.buildonce/manifest.json   the stored manifest, the exact bytes from the store
 *   <root>/current -> releases/<version>           relative symlink, replaced atomically (symlink + rename)
 *   <root>/.incoming/                              downloads being verified (deleted afterwards)
 *
 * A release directory appears only by rename(2) of a fully written temp directory, so it is complete
 * whenever it exists; `current` only ever names such a directory.
 */

/** `<root>/releases` */
export const RELEASES_DIR = 'releases';
/** `<root>/current` */
export const CURRENT_LINK = 'current';
/** `<root>/.incoming`: downloads being verified */
export const INCOMING_DIR = '.incoming';

/** The install root cannot be used (e.g. `current` is a real directory, the tarball writes `.buildonce/`). */
export class LocalDeployError extends BuildonceError {
  override name = 'LocalDeployError';
}

export interface DeployLocalOptions {
  store: BlobStore;
  project: ProjectName;
  version: Version;
  /** install root (absolute), e.g. `.buildonce/deploy/<env>/<project>` or `/opt/express-api` */
  root: string;
  /** namespace the version was published in (default `trusted`) */
  namespace?: ArtifactNamespace;
  /** one line per step */
  log?: (line: string) => void;
  /**
   * The stored manifest the caller already verified (promotion: integrity and provenance checks).
   * When given, the manifest is not read from the store again: the bytes installed are checked
   * against this one and it is what the release records, so a store changed after the check cannot
   * put other bytes live. Without it, the manifest is read from the store once.
   */
  stored?: StoredManifest;
  /** progress of each download of 8 MiB or more (bytes so far, total bytes) */
  onProgress?: (file: string, loadedBytes: number, totalBytes: number) => void;
}

/** What {@link deployLocal} did. `path` is the release directory `current` points at. */
export type DeployLocalResult =
  | { status: 'deployed'; version: Version; path: string; previousVersion: Version | null; manifest: StoredManifest }
  /** `current` already named this version; nothing changed (the stored bytes were still verified) */
  | { status: 'already-current'; version: Version; path: string; previousVersion: Version; manifest: StoredManifest };

/** A published version and when its manifest was written (S3 LastModified / file mtime). */
export interface PublishedVersion {
  version: Version;
  publishedAt: Date;
}

/**
 * The newest published versions of a project (those with a `manifest.json`, i.e. complete), newest
 * first by the manifest's LastModified, ties by version descending.
 * @param limit how many to return (default 5)
 * @throws StoreAccessError
 */
export async function newestVersions(store: BlobStore, project: ProjectName, limit = 5, namespace: ArtifactNamespace = 'trusted'): Promise<PublishedVersion[]> {
  const found: PublishedVersion[] = [];
  for await (const o of store.list(projectArtifactsPrefix(project, namespace))) {
    const k = parseArtifactKey(o.key);
    if (k?.file === STORED_MANIFEST_FILE) found.push({ version: k.version, publishedAt: o.lastModified });
  }
  found.sort(
    (a, b) =>
      b.publishedAt.getTime() - a.publishedAt.getTime() || b.version.length - a.version.length || (b.version < a.version ? -1 : b.version > a.version ? 1 : 0),
  );
  return found.slice(0, limit);
}

/** One line listing versions for error messages: `123 (2026-01-01T00:00:00.000Z), 456 (…)` or `none`. */
export function formatVersions(versions: readonly PublishedVersion[]): string {
  return versions.length ? versions.map((v) => `${v.version} (${v.publishedAt.toISOString()})`).join(', ') : 'none';
}

/**
 * Version `current` points at, from its link target `releases/<version>`; null when there is no
 * `current` yet. @throws LocalDeployError when `current` exists but is not such a link
 */
export async function currentVersion(root: string): Promise<Version | null> {
  const link = join(root, CURRENT_LINK);
  const st = await lstat(link).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  });
  if (!st) return null;
  if (!st.isSymbolicLink())
    throw new LocalDeployError(`${link} exists and is not a symlink: move it away (deploys manage it as a link to ${RELEASES_DIR}/<version>)`);
  const target = await readlink(link);
  const m = /^(?:.*\/)?releases\/([^/]+)\/?$/.exec(target);
  if (!m || !isVersion(m[1])) throw new LocalDeployError(`${link} points at "${target}", not ${RELEASES_DIR}/<version>`);
  return m[1];
}

class Sha256Tap extends Transform {
  readonly hash = createHash('sha256');
  size = 0;
  constructor(private readonly onBytes?: (size: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    this.onBytes?.(this.size);
    cb(null, chunk);
  }
}

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    () => false,
  );
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => undefined);
  if (!fh) return;
  await fh.sync().catch(() => undefined);
  await fh.close();
}

/**
 * Unpack-verify-flip, the `local` deploy target (and the TypeScript twin of
 * apps/express-api/deploy/user-data.sh; same layout, see the top of this file):
 *  1. takes the verified manifest (`stored`, as promotion passes it), or else reads the stored manifest
 *     `artifacts/<project>/<version>/manifest.json` once (missing → the error lists the newest published versions);
 *  2. streams every file the manifest names into `<root>/.incoming/…`, hashing while writing (one pass,
 *     constant memory), and compares size (bytes) and sha256 with that manifest — any mismatch stops
 *     here, nothing changed; unpacking reads only these verified files;
 *  3. unless `releases/<version>` already exists: builds it in a temp directory (node-tarball:
 *     `.tar.gz`/`.tgz` files extracted, other files moved in; lambda-zip and others: files as-is),
 *     adds `.buildonce/manifest.json` (the manifest of step 1), renames it into place;
 *  4. points `current` at `releases/<version>`: a new relative symlink renamed over the old one
 *     (atomic; a reader sees the old or the new release, never neither).
 * Always downloads and verifies, even when the version is already current (then returns
 * `already-current` without touching anything).
 * @throws ArtifactNotFoundError (version not published / a file missing), ArtifactIntegrityError
 *   (size or sha256 mismatch), LocalDeployError (unusable root or artifact; a tarball refused by the
 *   deploy profile of ArchivePolicy in @buildonce/artifact: nothing is written and no temp file stays),
 *   StoreAccessError, fs errors
 */
export async function deployLocal(o: DeployLocalOptions): Promise<DeployLocalResult> {
  const { store, project, version, root, namespace = 'trusted' } = o;
  const log = o.log ?? (() => undefined);
  const tag = `[${project}]`;

  const manifestKey = storedManifestKey(project, version, namespace);
  let stored: StoredManifest;
  let manifestBytes: Uint8Array;
  if (o.stored) {
    stored = o.stored;
    manifestBytes = Buffer.from(serializeManifest(stored));
  } else {
    const got = await store.getBytes(manifestKey);
    if (!got) {
      const newest = await newestVersions(store, project, 5, namespace);
      throw new ArtifactNotFoundError(
        `${tag} version ${version} is not published (${store.uriOf(manifestKey)} is missing); newest versions: ${formatVersions(newest)}`,
      );
    }
    stored = parseStoredManifestJson(got.bytes.toString('utf8'), store.uriOf(manifestKey));
    manifestBytes = got.bytes;
  }
  if (stored.manifest.project !== project || stored.manifest.version !== version) {
    throw new ArtifactIntegrityError(
      `${tag} ${o.stored ? 'the verified manifest' : store.uriOf(manifestKey)} describes ${stored.manifest.project}@${stored.manifest.version}, not ${project}@${version}`,
    );
  }
  log(`${tag} manifest ${o.stored ? '(verified by the caller)' : store.uriOf(manifestKey)}: ${stored.manifest.kind}, ${stored.manifest.files.length} file(s)`);

  const previousVersion = await currentVersion(root);
  const releases = join(root, RELEASES_DIR);
  const releaseDir = join(releases, version);
  await mkdir(join(root, INCOMING_DIR), { recursive: true });
  await mkdir(releases, { recursive: true });
  const incoming = await mkdtemp(join(root, INCOMING_DIR, `${version}-`));
  try {
    for (const f of stored.manifest.files) {
      const key = artifactKey(project, version, f.name, namespace);
      const stream = await store.getStream(key);
      if (!stream) throw new ArtifactNotFoundError(`${tag} ${store.uriOf(key)} is missing but the manifest names it`);
      const tap = new Sha256Tap(o.onProgress ? (n) => o.onProgress!(f.name, n, f.size) : undefined);
      await pipeline(stream, tap, createWriteStream(join(incoming, f.name)));
      const hex = tap.hash.digest('hex');
      if (tap.size !== f.size || hex !== f.sha256) {
        throw new ArtifactIntegrityError(
          `${tag} ${store.uriOf(key)} does not match its manifest: ${tap.size} bytes sha256 ${hex}, expected ${f.size} bytes sha256 ${f.sha256}; nothing was changed`,
        );
      }
      log(`${tag} verified ${f.name} (${f.size} bytes, sha256 ${f.sha256})`);
    }

    if (await exists(releaseDir)) {
      const mine = await readFile(join(releaseDir, DEPLOYED_MANIFEST_PATH)).catch(() => undefined);
      if (!mine) throw new LocalDeployError(`${tag} ${releaseDir} exists but has no ${DEPLOYED_MANIFEST_PATH}: it was not made by a deploy, remove it`);
      log(`${tag} ${releaseDir} already unpacked`);
    } else {
      const tmp = join(releases, `.${version}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
      await mkdir(tmp);
      try {
        for (const f of stored.manifest.files) {
          const src = join(incoming, f.name);
          if (stored.manifest.kind === 'node-tarball' && /\.(tar\.gz|tgz)$/.test(f.name)) {
            try {
              await extractTarGz(src, tmp);
            } catch (e) {
              if (e instanceof TarballError) throw new LocalDeployError(`${tag} ${project}@${version}: ${e.message}; nothing was changed`, { cause: e });
              throw e;
            }
            log(`${tag} unpacked ${f.name}`);
          } else {
            // the verified download itself becomes the release file (same filesystem; .incoming is deleted after)
            await rename(src, join(tmp, f.name));
          }
        }
        const deployed = join(tmp, DEPLOYED_MANIFEST_PATH);
        if (await exists(dirname(deployed)))
          throw new LocalDeployError(`${tag} the artifact contains ${dirname(DEPLOYED_MANIFEST_PATH)}/, which deploys reserve for the manifest`);
        await mkdir(dirname(deployed), { recursive: true });
        await writeFile(deployed, manifestBytes);
        await rename(tmp, releaseDir).catch(async (e: NodeJS.ErrnoException) => {
          // a concurrent deploy of the same version won the rename: its directory is just as complete
          if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;
          await rm(tmp, { recursive: true, force: true });
        });
        await fsyncDir(releases);
        log(`${tag} release ${releaseDir} ready`);
      } catch (e) {
        // the original error is the one to report, whatever the clean-up meets
        await rm(tmp, { recursive: true, force: true, maxRetries: 3 }).catch(() => undefined);
        throw e;
      }
    }

    if (previousVersion === version) {
      log(`${tag} ${join(root, CURRENT_LINK)} already points at ${RELEASES_DIR}/${version}`);
      return { status: 'already-current', version, path: releaseDir, previousVersion: version, manifest: stored };
    }
    const tmpLink = join(root, `.${CURRENT_LINK}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    await symlink(`${RELEASES_DIR}/${version}`, tmpLink);
    try {
      await rename(tmpLink, join(root, CURRENT_LINK));
    } catch (e) {
      await rm(tmpLink, { force: true });
      throw e;
    }
    await fsyncDir(root);
    log(`${tag} ${join(root, CURRENT_LINK)} -> ${RELEASES_DIR}/${version} (previous: ${previousVersion ?? 'none'})`);
    return { status: 'deployed', version, path: releaseDir, previousVersion, manifest: stored };
  } finally {
    await rm(incoming, { recursive: true, force: true, maxRetries: 3 }).catch(() => undefined);
  }
}
