/**
 * OCI image format pieces buildonce writes and reads (OCI image spec v1.1: descriptor, image manifest,
 * image index, image config, image layout; https://github.com/opencontainers/image-spec). Docker's
 * schema 2 media types are accepted when reading a base image and mapped to their OCI equivalents
 * (same bytes, same digests).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';

export const MEDIA_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MEDIA_OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const MEDIA_OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const MEDIA_OCI_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';
export const MEDIA_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const MEDIA_DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const MEDIA_DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
export const MEDIA_DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

/** Accept header for manifest requests: every manifest and index type we understand. */
export const MANIFEST_ACCEPT = [MEDIA_OCI_MANIFEST, MEDIA_OCI_INDEX, MEDIA_DOCKER_MANIFEST, MEDIA_DOCKER_LIST].join(', ');

/** OCI media types for the Docker equivalents (identical bytes). */
export const OCI_EQUIVALENT: Record<string, string> = {
  [MEDIA_DOCKER_MANIFEST]: MEDIA_OCI_MANIFEST,
  [MEDIA_DOCKER_LIST]: MEDIA_OCI_INDEX,
  [MEDIA_DOCKER_CONFIG]: MEDIA_OCI_CONFIG,
  [MEDIA_DOCKER_LAYER_GZIP]: MEDIA_OCI_LAYER_GZIP,
};

export const digestSchema = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'digest must be sha256:<64 hex>');

export const platformSchema = z.object({ architecture: z.string(), os: z.string(), variant: z.string().optional() }).passthrough();

/** OCI content descriptor. */
export const descriptorSchema = z
  .object({
    mediaType: z.string(),
    digest: digestSchema,
    size: z.number().int().nonnegative(),
    annotations: z.record(z.string(), z.string()).optional(),
    platform: platformSchema.optional(),
  })
  .passthrough();
export type Descriptor = z.infer<typeof descriptorSchema>;

/** The fields an image manifest and an image index share (OCI image spec, manifest.md and image-index.md). */
const versionedDocument = {
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  annotations: z.record(z.string(), z.string()).optional(),
};

export const imageManifestSchema = z.object({ ...versionedDocument, config: descriptorSchema, layers: z.array(descriptorSchema) }).passthrough();
export type ImageManifest = z.infer<typeof imageManifestSchema>;

export const imageIndexSchema = z.object({ ...versionedDocument, manifests: z.array(descriptorSchema) }).passthrough();
export type ImageIndex = z.infer<typeof imageIndexSchema>;

/** The parts of an image config buildonce reads or sets; everything else is carried over unchanged. */
export const imageConfigSchema = z
  .object({
    architecture: z.string(),
    os: z.string(),
    variant: z.string().optional(),
    created: z.string().optional(),
    config: z
      .object({
        Env: z.array(z.string()).nullish(),
        Entrypoint: z.array(z.string()).nullish(),
        Cmd: z.array(z.string()).nullish(),
        WorkingDir: z.string().optional(),
        Labels: z.record(z.string(), z.string()).nullish(),
      })
      .passthrough()
      .optional(),
    rootfs: z.object({ type: z.literal('layers'), diff_ids: z.array(digestSchema) }).passthrough(),
    history: z
      .array(
        z
          .object({ created: z.string().optional(), created_by: z.string().optional(), comment: z.string().optional(), empty_layer: z.boolean().optional() })
          .passthrough(),
      )
      .optional(),
  })
  .passthrough();
export type ImageConfig = z.infer<typeof imageConfigSchema>;

/** `sha256:<hex>` of bytes. */
export function digestOf(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** The hex part of a `sha256:` digest. */
export function digestHex(digest: string): string {
  return digest.slice('sha256:'.length);
}

/** Platform strings buildonce builds for, and their Lambda architecture names. */
export type Platform = 'linux/amd64' | 'linux/arm64';
export const LAMBDA_ARCH: Record<Platform, 'x86_64' | 'arm64'> = { 'linux/amd64': 'x86_64', 'linux/arm64': 'arm64' };
export const PLATFORM_OF_ARCH: Record<'x86_64' | 'arm64', Platform> = { x86_64: 'linux/amd64', arm64: 'linux/arm64' };

/** Splits `linux/arm64` into `{ os, architecture }`. */
export function splitPlatform(p: Platform): { os: string; architecture: string } {
  const [os, architecture] = p.split('/') as [string, string];
  return { os, architecture };
}

/**
 * Canonical JSON bytes of a manifest/config/index we write: `JSON.stringify` without whitespace, key
 * order as constructed (our objects are built in a fixed order; base configs keep the base's order).
 * The same object always gives the same bytes, hence the same digest.
 */
export function canonicalJson(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}
