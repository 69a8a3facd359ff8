import { readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { sha256File, type Sha256Digest } from './hash';
import { z } from 'zod';
import { projectNameSchema, versionSchema, type ProjectName } from '@buildonce/values';
import { BuildonceError } from '@buildonce/errors';

/** Current manifest schema version written by the build executors. */
export const MANIFEST_SCHEMA_VERSION = 1;

/** File name of the manifest the build writes next to its outputs (restored by the Nx cache too). */
export const BUILD_MANIFEST_FILE = 'artifact.json';

/** File name of the manifest inside the store (`artifacts/<project>/<version>/manifest.json`). */
export const STORED_MANIFEST_FILE = 'manifest.json';

/** File name of a version's signed provenance (DSSE envelope of an in-toto statement) in the store, beside `manifest.json`. */
export const PROVENANCE_FILE = 'provenance.intoto.json';

const fileName = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,200}$/, 'file names are plain names: letters, digits, ".", "_", "-"')
  .refine((n) => n !== '.' && n !== '..' && n !== STORED_MANIFEST_FILE && n !== PROVENANCE_FILE, 'reserved file name');

/** CPU architecture of an artifact's executables (the Lambda `Architectures` names). */
export const architectureSchema = z.enum(['x86_64', 'arm64']);
export type Architecture = z.infer<typeof architectureSchema>;

export const manifestFileSchema = z
  .object({
    name: fileName,
    size: z.number().int().nonnegative(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'sha256 must be 64 lowercase hex chars'),
  })
  .strict();

/** Artifact kinds: a Lambda zip, a self-contained Node tarball, or an OCI container image. */
export const artifactKindSchema = z.enum(['lambda-zip', 'node-tarball', 'oci-image']);
export type ArtifactKind = z.infer<typeof artifactKindSchema>;

/** `sha256:<64 hex>`: an OCI content digest (OCI image spec, descriptor `digest`). */
export const ociDigestSchema = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'an image digest is sha256:<64 lowercase hex chars>');

/** Identity of an `oci-image` artifact: its image manifest digest and platform (`linux/amd64`, `linux/arm64`). */
export const imageInfoSchema = z
  .object({
    /** digest of the OCI image manifest (== sha256 of the manifest file listed in `files`) */
    digest: ociDigestSchema,
    platform: z.enum(['linux/amd64', 'linux/arm64']),
  })
  .strict();
export type ImageInfo = z.infer<typeof imageInfoSchema>;

/** Build manifest (`artifact.json`): what the build produced, nothing machine-specific. */
export const manifestSchema = z
  .object({
    schemaVersion: z.literal(MANIFEST_SCHEMA_VERSION),
    project: projectNameSchema,
    version: versionSchema,
    kind: artifactKindSchema,
    files: z.array(manifestFileSchema).min(1),
    runtime: z.string().min(1),
    architecture: architectureSchema,
    /** highest glibc version the artifact's executable needs (e.g. `2.34`), checked against the runtime at build time */
    glibcMax: z
      .string()
      .regex(/^\d+(\.\d+){1,2}$/, 'glibcMax is a glibc version such as 2.34')
      .optional(),
    handler: z.string().min(1).optional(),
    /** entry point inside a node-tarball (e.g. `main.js`) */
    entry: z.string().min(1).optional(),
    toolchain: z.string().min(1),
    /** oci-image only: the image's manifest digest and platform */
    image: imageInfoSchema.optional(),
  })
  .strict()
  .refine((m) => (m.kind === 'oci-image') === !!m.image, { message: 'kind oci-image needs image { digest, platform } (and only it has one)', path: ['image'] })
  // the digest is what a deploy runs: it must be the sha256 of a listed file, so verifying the files verifies it
  .refine((m) => !m.image || m.files.some((f) => `sha256:${f.sha256}` === m.image!.digest), {
    message: 'image.digest must be the sha256 of one of the listed files (the image manifest)',
    path: ['image', 'digest'],
  })
  .refine((m) => new Set(m.files.map((f) => f.name)).size === m.files.length, {
    message: 'file names must be unique',
    path: ['files'],
  });

export type Manifest = z.infer<typeof manifestSchema>;
export type ManifestFile = z.infer<typeof manifestFileSchema>;

/** Who published a version and from where (taken from the CI environment when present). */
export const publishMetadataSchema = z
  .object({
    publishedAt: z.string(),
    builder: z.string(),
    trusted: z.boolean(),
    commit: z.string().optional(),
    branch: z.string().optional(),
    runId: z.string().optional(),
    pr: z.string().optional(),
    actor: z.string().optional(),
  })
  .strict();
export type PublishMetadata = z.infer<typeof publishMetadataSchema>;

/**
 * Where a published `oci-image` lives in its registry: the repository, the immutable image URI by
 * digest (`<host>/<repo>@sha256:…`, what Lambda's `ImageUri` and Terraform's `lambda_image_uri` take)
 * and the tags pushed (the version, and `sha-<commit>-<yyyymmdd>` when the commit was known).
 */
export const registryRecordSchema = z
  .object({
    repository: z.string().min(1),
    uri: z.string().regex(/@sha256:[0-9a-f]{64}$/, 'an image URI by digest ends in @sha256:<64 hex>'),
    tags: z.array(z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/)),
  })
  .strict();
export type RegistryRecord = z.infer<typeof registryRecordSchema>;

/** Stored manifest (`manifest.json` in the store): the build manifest plus publish metadata (+ registry record for images). */
export const storedManifestSchema = z
  .object({
    manifest: manifestSchema,
    publish: publishMetadataSchema,
    registry: registryRecordSchema.optional(),
  })
  .strict()
  .refine((s) => (s.manifest.kind === 'oci-image') === !!s.registry, {
    message: 'an oci-image record needs registry { repository, uri, tags } (and only it has one)',
    path: ['registry'],
  })
  .refine((s) => !s.registry || !s.manifest.image || s.registry.uri === `${s.registry.repository}@${s.manifest.image.digest}`, {
    message: 'registry.uri must be registry.repository@image.digest (the record disagrees with the verified digest)',
    path: ['registry', 'uri'],
  });
export type StoredManifest = z.infer<typeof storedManifestSchema>;

/**
 * The image URI by digest a deploy of an oci-image runs: `<registry.repository>@<manifest.image.digest>`,
 * built from the digest (which the schema ties to a verified file's sha256), never taken from the
 * record's `uri` field. Undefined for other kinds.
 */
export function imageUriOf(s: StoredManifest): string | undefined {
  return s.registry && s.manifest.image ? `${s.registry.repository}@${s.manifest.image.digest}` : undefined;
}

/** Thrown when a manifest does not match the schema; the message names the field. */
export class ManifestError extends BuildonceError {
  override name = 'ManifestError';
}

/** The first problem zod found, as `<field path>: <message>` (`(root)` for the whole value): for one-line errors. */
export function firstIssue(err: z.ZodError): string {
  const issue = err.issues[0];
  const path = issue?.path.length ? issue.path.join('.') : '(root)';
  return `${path}: ${issue?.message ?? 'invalid'}`;
}

/**
 * Validates an already-parsed manifest object.
 * @param source where it came from, for the error message (a path or URI)
 * @throws ManifestError naming the first bad field
 */
export function parseManifest(value: unknown, source = 'manifest'): Manifest {
  const r = manifestSchema.safeParse(value);
  if (!r.success) throw new ManifestError(`invalid manifest ${source}: ${firstIssue(r.error)}`);
  return r.data;
}

/** Parses JSON text of a build manifest. @throws ManifestError on bad JSON or schema */
export function parseManifestJson(text: string, source = 'manifest'): Manifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ManifestError(`invalid manifest ${source}: not JSON (${(e as Error).message})`);
  }
  return parseManifest(value, source);
}

/** Parses JSON text of a stored manifest (`manifest.json`). @throws ManifestError */
export function parseStoredManifestJson(text: string, source = 'stored manifest'): StoredManifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ManifestError(`invalid stored manifest ${source}: not JSON (${(e as Error).message})`);
  }
  const r = storedManifestSchema.safeParse(value);
  if (!r.success) throw new ManifestError(`invalid stored manifest ${source}: ${firstIssue(r.error)}`);
  return r.data;
}

/** Canonical JSON text of a manifest (stable key order as written, 2-space indent, trailing newline). */
export function serializeManifest(m: Manifest | StoredManifest): string {
  return JSON.stringify(m, null, 2) + '\n';
}

/** True when two manifests name the same files with the same sizes and sha256 (metadata ignored). */
export function sameFiles(a: Manifest, b: Manifest): boolean {
  if (a.files.length !== b.files.length) return false;
  const byName = new Map(b.files.map((f) => [f.name, f]));
  return a.files.every((f) => {
    const o = byName.get(f.name);
    return !!o && o.size === f.size && o.sha256 === f.sha256;
  });
}

/**
 * Reads and validates the build manifest `<dir>/artifact.json`.
 * @throws Error (one line, names the path and the fix) when missing; ManifestError when invalid
 */
export async function readBuildManifest(dir: string, project: ProjectName): Promise<Manifest> {
  const path = join(dir, BUILD_MANIFEST_FILE);
  const text = await readFile(path, 'utf8').catch(() => {
    throw new ManifestError(`build manifest ${path} is missing: run nx run ${project}:build first (or check the build target's outputPath)`);
  });
  const m = parseManifestJson(text, path);
  if (m.project !== project) throw new ManifestError(`build manifest ${path} is for project "${m.project}", not "${project}": check outputPath`);
  return m;
}

/**
 * Writes the build manifest for a build that produced one artifact file: hashes the file (sha256,
 * streamed), validates the manifest and writes `artifact.json` next to the file.
 * @param artifactPath the produced file (bootstrap.zip, …-deployment.tar.gz)
 * @param fields everything but `schemaVersion` and `files`
 * @returns the manifest written and the file's digest (size in bytes)
 * @throws ManifestError when a field is invalid; fs errors
 */
export async function writeBuildManifest(
  artifactPath: string,
  fields: Omit<Manifest, 'schemaVersion' | 'files'>,
): Promise<{ manifest: Manifest; digest: Sha256Digest }> {
  const digest = await sha256File(artifactPath);
  const manifest = parseManifest({
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    ...fields,
    files: [{ name: basename(artifactPath), size: digest.size, sha256: digest.hex }],
  });
  await writeFile(join(dirname(artifactPath), BUILD_MANIFEST_FILE), serializeManifest(manifest));
  return { manifest, digest };
}
