import { join } from 'node:path';
import { sha256File, type Manifest, type PublishMetadata, type RegistryRecord } from '@buildonce/artifact';
import type { AwsClients } from '@buildonce/aws';
import { ConfigError } from '@buildonce/errors';
import { ArtifactIntegrityError, type ArtifactNamespace } from '@buildonce/store';
import { IMAGE_MANIFEST_FILE } from './assemble';
import { clientFor } from './credentials';
import { pushImage, layoutDirOf, type PushImageResult } from './push';
import { parseImageReference, repositoryUri, type ImageReference } from './reference';
import type { ProjectName, Version } from '@buildonce/values';

/** Environment variable naming the registry repository images are pushed to (`host/repo`, e.g. an ECR repository URI). */
export const REGISTRY_ENV = 'BUILDONCE_REGISTRY';

/**
 * The registry repository to push to: the `registry` option, else `BUILDONCE_REGISTRY`.
 * @throws ConfigError when neither is set or the value has a tag/digest
 */
export function resolveRegistry(option: string | undefined, env: NodeJS.ProcessEnv = process.env): ImageReference {
  const value = option || env[REGISTRY_ENV];
  if (!value)
    throw new ConfigError(
      `no registry for the oci-image: set the publish target's "registry" option or ${REGISTRY_ENV}=<host>/<repository> (e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/rust-scorer)`,
    );
  const ref = parseImageReference(value);
  if (ref.tag || ref.digest) throw new ConfigError(`registry "${value}" must be a repository (<host>/<repository>) without a tag or digest`);
  return ref;
}

/**
 * Tags of a published image: the version (immutable) and `sha-<commit>-<yyyymmdd>` (UTC publish date)
 * when the commit is known. Preview (untrusted) builds get `preview-<version>` instead, so a pull
 * request can never claim the version tag trusted promotions use (DESIGN invariant 6).
 */
export function imageTags(o: { version: Version; namespace: ArtifactNamespace; commit?: string; publishedAt: string }): string[] {
  if (o.namespace === 'preview') return [`preview-${o.version}`];
  const tags: string[] = [o.version];
  if (o.commit && /^[0-9a-f]{7,64}$/.test(o.commit)) tags.push(`sha-${o.commit}-${o.publishedAt.slice(0, 10).replace(/-/g, '')}`);
  return tags;
}

export interface PushImageBuildOptions {
  project: ProjectName;
  /** directory with artifact.json, image-manifest.json and oci/ (absolute) */
  outputDir: string;
  /** the build manifest read from outputDir (kind oci-image) */
  manifest: Manifest;
  /** registry repository (`host/repo`); default BUILDONCE_REGISTRY */
  registry?: string;
  namespace: ArtifactNamespace;
  metadata: PublishMetadata;
  dryRun?: boolean;
  env?: NodeJS.ProcessEnv;
  /** the command's AWS clients (ECR tokens for ECR registries), built once by the command layer */
  aws: AwsClients;
  /** one line per step, already prefixed by the caller */
  log: (line: string) => void;
}

/**
 * The registry half of publishing an `oci-image` build: checks that `image-manifest.json` still hashes
 * to artifact.json's image digest, then pushes the image layout (see {@link pushImage}; a re-publish
 * uploads nothing) with the tags of {@link imageTags}. The caller records the returned
 * `registry` record in the store (libs/commands runPublishCommand), so promotion, policy, releases and
 * resolve work unchanged.
 * @throws ConfigError (no registry / not an image), ArtifactIntegrityError (layout does not match
 *   artifact.json), ArtifactConflictError (a tag on another digest), RegistryError
 */
export async function pushImageBuild(o: PushImageBuildOptions): Promise<{ push: PushImageResult; registry: RegistryRecord }> {
  const env = o.env ?? process.env;
  const { manifest } = o;
  if (manifest.kind !== 'oci-image' || !manifest.image) throw new ConfigError(`${o.project}: ${manifest.kind} builds are not images`);
  const d = await sha256File(join(o.outputDir, IMAGE_MANIFEST_FILE)).catch(() => undefined);
  if (!d || `sha256:${d.hex}` !== manifest.image.digest) {
    throw new ArtifactIntegrityError(
      `${join(o.outputDir, IMAGE_MANIFEST_FILE)} does not match artifact.json (image ${manifest.image.digest}): rebuild with nx run ${o.project}:build --skip-nx-cache`,
    );
  }
  const target = resolveRegistry(o.registry, env);
  const tags = imageTags({ version: manifest.version, namespace: o.namespace, commit: o.metadata.commit, publishedAt: o.metadata.publishedAt });
  const client = await clientFor(target, { configuredHost: target.registry, env, aws: o.aws });
  const push = await pushImage({ layoutDir: layoutDirOf(o.outputDir), target, client, tags, dryRun: o.dryRun, log: o.log });
  if (push.status === 'dry-run') {
    o.log(
      `dry run: would push ${push.uri} (${push.blobsUploaded} blob(s), ${push.bytesUploaded} bytes; ${push.blobsExisting} already there) with tags ${tags.join(', ')}`,
    );
  } else {
    o.log(
      `${push.status === 'already-pushed' ? 'already in' : 'pushed to'} ${repositoryUri(target)}: ${push.uri} (uploaded ${push.blobsUploaded} blob(s), ${push.bytesUploaded} bytes; mounted ${push.blobsMounted}; ${push.blobsExisting} already there); tags ${tags.join(', ')}`,
    );
  }
  return { push, registry: { repository: repositoryUri(target), uri: push.uri, tags } };
}

/**
 * True when an image URI by digest (`<host>/<repo>@sha256:…`) is in its registry (OCI distribution
 * `HEAD /v2/<repo>/manifests/<digest>`), using the credentials of {@link clientFor}.
 * @throws ImageConfigError when the URI has no digest; RegistryError/RegistryAuthError when the registry fails
 */
export async function imageExists(imageUri: string, o: { env?: NodeJS.ProcessEnv; aws: AwsClients }): Promise<boolean> {
  const env = o.env ?? process.env;
  const ref = parseImageReference(imageUri);
  if (!ref.digest) throw new ConfigError(`image URI "${imageUri}" has no digest: buildonce deploys images by digest`);
  const configured = env[REGISTRY_ENV] ? parseImageReference(env[REGISTRY_ENV]!).registry : undefined;
  const client = await clientFor(ref, { configuredHost: configured, env, aws: o.aws });
  return (await client.headManifest(ref.repository, ref.digest)) !== undefined;
}
