/**
 * Deterministic OCI image assembly without a Docker daemon: a base image pinned by digest (pulled
 * through the OCI distribution API) plus layers made from build outputs, written as an OCI image
 * layout. Same base digest + same files + same options → same layer, config and manifest bytes →
 * the same manifest digest on any machine (no timestamps but the fixed {@link IMAGE_CREATED}, no
 * host names, uids or paths).
 */
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { createHash } from 'node:crypto';
import pLimit from 'p-limit';
import { TAR_EPOCH, writeDeterministicTarGz, writeBuildManifest, type TarEntry, type Manifest } from '@buildonce/artifact';
import {
  MEDIA_OCI_CONFIG,
  MEDIA_OCI_INDEX,
  MEDIA_DOCKER_LIST,
  MEDIA_OCI_LAYER_GZIP,
  MEDIA_OCI_MANIFEST,
  OCI_EQUIVALENT,
  canonicalJson,
  digestOf,
  imageConfigSchema,
  imageIndexSchema,
  imageManifestSchema,
  splitPlatform,
  LAMBDA_ARCH,
  type Descriptor,
  type ImageConfig,
  type Platform,
} from './oci';
import { blobPath, copyBlob, digestFile, hasBlob, writeBlobBytes, writeBlobStream, writeLayoutIndex } from './layout';
import { parseImageReference, repositoryUri, type ImageReference } from './reference';
import type { RegistryClient } from './registry';
import { ImageConfigError } from './errors';
import type { ProjectName, Version } from '@buildonce/values';

/** `created` of every config and history entry we write: the tar epoch (1980-01-01T00:00:00Z). */
export const IMAGE_CREATED = TAR_EPOCH.toISOString().replace('.000Z', 'Z');
/** Annotations naming the base image in the manifest (OCI image spec pre-defined annotation keys). */
export const BASE_NAME_ANNOTATION = 'org.opencontainers.image.base.name';
export const BASE_DIGEST_ANNOTATION = 'org.opencontainers.image.base.digest';
/** File (next to artifact.json) holding the image manifest bytes; its sha256 is the image digest. */
export const IMAGE_MANIFEST_FILE = 'image-manifest.json';
/** Directory (next to artifact.json) holding the OCI image layout. */
export const IMAGE_LAYOUT_DIR = 'oci';

/** One file of a layer: where it goes in the image (may use `${VAR}` from the base config's Env) and its bytes. */
export type ImageFile = { destination: string; mode?: number } & ({ path: string } | { bytes: Uint8Array });

export interface ImageLayerSpec {
  /** short description recorded in the config history (`buildonce: <name>`) */
  name: string;
  files: ImageFile[];
}

/**
 * What an image changes in its base image's config (OCI image spec, config `Entrypoint`, `Cmd`, `Env`,
 * `WorkingDir`, `Labels`); an undefined field keeps the base's value. The `oci-image` executor's options
 * carry the same fields.
 */
export interface ImageConfigChanges {
  entrypoint?: string[];
  cmd?: string[];
  /** set/replace environment variables (sorted by name when written) */
  env?: Record<string, string>;
  workingDir?: string;
  /** added to the base's labels (sorted by name when written) */
  labels?: Record<string, string>;
}

/** The {@link ImageConfigChanges} fields of `o` and nothing else (an options object passed down carries more). */
export function imageConfigChanges(o: ImageConfigChanges): ImageConfigChanges {
  return { entrypoint: o.entrypoint, cmd: o.cmd, env: o.env, workingDir: o.workingDir, labels: o.labels };
}

export interface AssembleImageOptions extends ImageConfigChanges {
  /** `host/repo[:tag]@sha256:…` — a digest is required (a tag alone is not reproducible) */
  baseImage: string;
  platform: Platform;
  layers: ImageLayerSpec[];
  /** output directory: `oci/` layout, image-manifest.json (and artifact.json via {@link buildImage}) */
  outDir: string;
  /** blob cache shared across builds (content-addressed; base layers are fetched once) */
  cacheDir?: string;
  /** client for the base image's registry */
  baseClient: RegistryClient;
  /** ref name recorded in the layout's index.json (e.g. the version) */
  refName: string;
  log?: (line: string) => void;
}

export interface AssembledImage {
  /** digest of the image manifest */
  digest: string;
  platform: Platform;
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
  /** layers we added (the rest come from the base) */
  addedLayers: Descriptor[];
  base: { reference: string; repository: string; digest: string };
  /** bytes of every layer plus config */
  size: number;
}

const VAR = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;

/** Expands `${VAR}` / `$VAR` in a destination with the base image's Env. @throws ImageConfigError for unknown variables */
export function expandDestination(dest: string, env: Record<string, string>): string {
  const out = dest.replace(VAR, (_, a: string | undefined, b: string | undefined) => {
    const k = (a ?? b)!;
    if (env[k] === undefined)
      throw new ImageConfigError(`image file destination "${dest}" uses \${${k}}, which the base image's Env does not define: use an absolute path`);
    return env[k]!;
  });
  const norm = out.replace(/^\/+/, '').replace(/\/+/g, '/').replace(/\/$/, '');
  if (!out.startsWith('/') || !norm || norm.split('/').some((p) => p === '.' || p === '..')) {
    throw new ImageConfigError(`image file destination "${dest}" (→ "${out}") must be an absolute path without "." or ".." segments`);
  }
  return norm;
}

function envMap(list: readonly string[] | null | undefined): Record<string, string> {
  const m: Record<string, string> = {};
  for (const e of list ?? []) {
    const i = e.indexOf('=');
    if (i > 0) m[e.slice(0, i)] = e.slice(i + 1);
  }
  return m;
}

/**
 * Resolves the base image manifest for a platform: GET by digest; an index (OCI index or Docker
 * manifest list) is narrowed to the entry whose platform matches.
 * @throws ImageConfigError when the base has no entry for the platform or its config is for another one
 */
async function resolveBase(
  client: RegistryClient,
  ref: ImageReference,
  platform: Platform,
): Promise<{ digest: string; manifestDigest: string; layers: Descriptor[]; configBytes: Buffer; configDigest: string }> {
  const want = splitPlatform(platform);
  let got = await client.getManifest(ref.repository, ref.digest!);
  if (got.mediaType === MEDIA_OCI_INDEX || got.mediaType === MEDIA_DOCKER_LIST) {
    const index = imageIndexSchema.parse(JSON.parse(got.bytes.toString('utf8')));
    const entry = index.manifests.find((m) => m.platform?.os === want.os && m.platform?.architecture === want.architecture);
    if (!entry)
      throw new ImageConfigError(
        `base image ${ref.registry}/${ref.repository}@${ref.digest} has no ${platform} manifest: pick a base that supports it or change platform`,
      );
    got = await client.getManifest(ref.repository, entry.digest);
  }
  const manifest = imageManifestSchema.parse(JSON.parse(got.bytes.toString('utf8')));
  const configBytes = Buffer.from(await streamToBuffer(await client.getBlob(ref.repository, manifest.config.digest)));
  if (digestOf(configBytes) !== manifest.config.digest) throw new ImageConfigError(`base image config ${manifest.config.digest} arrived with other bytes`);
  return { digest: ref.digest!, manifestDigest: got.digest, layers: manifest.layers, configBytes, configDigest: manifest.config.digest };
}

async function streamToBuffer(s: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c);
  return Buffer.concat(parts);
}

/** sha256 of the uncompressed tar inside a .tar.gz (the layer's `diff_id`). */
async function diffIdOf(gzPath: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const c of createReadStream(gzPath).pipe(createGunzip())) hash.update(c as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

/**
 * Assembles the image and writes the OCI image layout `<outDir>/oci` plus `<outDir>/image-manifest.json`.
 * Base layers are fetched (or copied from `cacheDir`) and digest-checked; our layers are deterministic
 * gzip tarballs (libs/artifact `writeDeterministicTarGz`: sorted entries, fixed mtime, uid/gid 0).
 * The config is the base config with `created` fixed, Env/Entrypoint/Cmd/WorkingDir/Labels applied,
 * our diff_ids and history entries appended; the manifest is an OCI image manifest annotated with the
 * base name and digest. Sources: OCI image spec (manifest, config, layer, layout), OCI distribution spec (pull).
 * @throws ImageConfigError for a base without digest / wrong platform / bad destinations; RegistryError, ImageIntegrityError
 */
export async function assembleImage(o: AssembleImageOptions): Promise<AssembledImage> {
  const log = o.log ?? (() => undefined);
  const ref = parseImageReference(o.baseImage);
  if (!ref.digest)
    throw new ImageConfigError(
      `baseImage "${o.baseImage}" has no digest: pin it as <image>@sha256:<digest> (a tag can move, so the build would not be reproducible)`,
    );
  const layoutDir = join(o.outDir, 'oci');
  await rm(layoutDir, { recursive: true, force: true });
  await mkdir(join(layoutDir, 'blobs', 'sha256'), { recursive: true });

  const base = await resolveBase(o.baseClient, ref, o.platform);
  const baseConfig = imageConfigSchema.parse(JSON.parse(base.configBytes.toString('utf8')));
  const want = splitPlatform(o.platform);
  if (baseConfig.os !== want.os || baseConfig.architecture !== want.architecture) {
    throw new ImageConfigError(
      `base image ${o.baseImage} is ${baseConfig.os}/${baseConfig.architecture}, not ${o.platform}: pick the ${o.platform} variant or change platform`,
    );
  }
  log(`base ${repositoryUri(ref)}@${base.manifestDigest} (${base.layers.length} layer(s))`);

  // base layers: cache → layout, else registry → cache/layout (digest-checked while streaming)
  const limit = pLimit(3);
  await Promise.all(
    base.layers.map((l) =>
      limit(async () => {
        if (o.cacheDir && (await hasBlob(o.cacheDir, l.digest, l.size))) return copyBlob(o.cacheDir, layoutDir, l.digest);
        await writeBlobStream(layoutDir, l.digest, await o.baseClient.getBlob(ref.repository, l.digest), l.size);
        log(`fetched base layer ${l.digest.slice(0, 19)} (${l.size} bytes)`);
        if (o.cacheDir) await copyBlob(layoutDir, o.cacheDir, l.digest);
      }),
    ),
  );

  // our layers
  const baseEnv = envMap(baseConfig.config?.Env);
  const added: Descriptor[] = [];
  const diffIds: string[] = [];
  const stage = await mkdtemp(join(tmpdir(), 'buildonce-layer-'));
  try {
    for (const [i, layer] of o.layers.entries()) {
      const entries: TarEntry[] = layer.files.map((f) => {
        const name = expandDestination(f.destination, baseEnv);
        return 'path' in f ? { name, path: f.path, mode: f.mode } : { name, bytes: f.bytes, mode: f.mode };
      });
      const tgz = join(stage, `layer-${i}.tar.gz`);
      await writeDeterministicTarGz(entries, tgz);
      const { digest, size } = await digestFile(tgz);
      diffIds.push(await diffIdOf(tgz));
      await rename(tgz, blobPath(layoutDir, digest)).catch(async () => writeBlobBytes(layoutDir, await readFile(tgz), digest));
      added.push({ mediaType: MEDIA_OCI_LAYER_GZIP, digest, size });
      log(`layer ${layer.name}: ${entries.map((e) => '/' + e.name).join(', ')} → ${digest.slice(0, 19)} (${size} bytes)`);
    }
  } finally {
    await rm(stage, { recursive: true, force: true });
  }

  // config: the base's, with fixed created, our settings, diff_ids and history
  const config = structuredClone(JSON.parse(base.configBytes.toString('utf8'))) as ImageConfig & Record<string, unknown>;
  config.created = IMAGE_CREATED;
  const c = { ...(config.config ?? {}) } as NonNullable<ImageConfig['config']>;
  if (o.env && Object.keys(o.env).length) {
    const merged = { ...baseEnv, ...o.env };
    const order = [
      ...(c.Env ?? []).map((e) => e.slice(0, e.indexOf('='))),
      ...Object.keys(o.env)
        .sort()
        .filter((k) => !(k in baseEnv)),
    ];
    c.Env = order.map((k) => `${k}=${merged[k]}`);
  }
  if (o.entrypoint) c.Entrypoint = o.entrypoint;
  if (o.cmd) c.Cmd = o.cmd;
  if (o.workingDir) c.WorkingDir = o.workingDir;
  if (o.labels && Object.keys(o.labels).length)
    c.Labels = { ...(c.Labels ?? {}), ...Object.fromEntries(Object.entries(o.labels).sort(([a], [b]) => (a < b ? -1 : 1))) };
  config.config = c;
  config.rootfs = { ...config.rootfs, type: 'layers', diff_ids: [...baseConfig.rootfs.diff_ids, ...diffIds] };
  config.history = [...(baseConfig.history ?? []), ...o.layers.map((l) => ({ created: IMAGE_CREATED, created_by: `buildonce oci-image: ${l.name}` }))];
  const configBytes = canonicalJson(config);
  const configDesc: Descriptor = { mediaType: MEDIA_OCI_CONFIG, digest: digestOf(configBytes), size: configBytes.length };
  await writeBlobBytes(layoutDir, configBytes, configDesc.digest);

  const layers: Descriptor[] = [
    ...base.layers.map((l) => ({ mediaType: OCI_EQUIVALENT[l.mediaType] ?? l.mediaType, digest: l.digest, size: l.size })),
    ...added,
  ];
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_OCI_MANIFEST,
    config: configDesc,
    layers,
    annotations: { [BASE_DIGEST_ANNOTATION]: base.manifestDigest, [BASE_NAME_ANNOTATION]: `${repositoryUri(ref)}${ref.tag ? `:${ref.tag}` : ''}` },
  };
  const manifestBytes = canonicalJson(manifest);
  const manifestDesc: Descriptor = { mediaType: MEDIA_OCI_MANIFEST, digest: digestOf(manifestBytes), size: manifestBytes.length };
  await writeBlobBytes(layoutDir, manifestBytes, manifestDesc.digest);
  await writeLayoutIndex(layoutDir, { ...manifestDesc, platform: { os: want.os, architecture: want.architecture } }, o.refName);
  await writeFile(join(o.outDir, IMAGE_MANIFEST_FILE), manifestBytes);
  return {
    digest: manifestDesc.digest,
    platform: o.platform,
    manifest: manifestDesc,
    config: configDesc,
    layers,
    addedLayers: added,
    base: { reference: o.baseImage, repository: ref.repository, digest: base.manifestDigest },
    size: layers.reduce((s, l) => s + l.size, configDesc.size),
  };
}

export interface BuildImageOptions extends Omit<AssembleImageOptions, 'refName'> {
  project: ProjectName;
  /** the Nx task hash */
  version: Version;
  /** Lambda runtime id recorded in artifact.json (e.g. `provided.al2023`) */
  runtime: string;
  handler?: string;
}

/**
 * {@link assembleImage} + `artifact.json` (kind `oci-image`, version, `image: { digest, platform }`,
 * files: `image-manifest.json` whose sha256 is the image digest).
 * @throws as assembleImage; ManifestError for invalid fields
 */
export async function buildImage(o: BuildImageOptions): Promise<{ image: AssembledImage; manifest: Manifest }> {
  await mkdir(o.outDir, { recursive: true });
  const image = await assembleImage({ ...o, refName: o.version });
  const { manifest } = await writeBuildManifest(join(o.outDir, IMAGE_MANIFEST_FILE), {
    project: o.project,
    version: o.version,
    kind: 'oci-image',
    runtime: o.runtime,
    architecture: LAMBDA_ARCH[o.platform],
    ...(o.handler ? { handler: o.handler } : {}),
    toolchain: `buildonce oci-image (base ${parseImageReference(o.baseImage).registry}/${image.base.repository}@${image.base.digest})`,
    image: { digest: image.digest, platform: o.platform },
  });
  return { image, manifest };
}
