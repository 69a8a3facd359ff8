import { join } from 'node:path';
import { readBuildManifest, sha256File } from '@buildonce/artifact';
import { awsClients, type AwsClients } from '@buildonce/aws';
import { ConfigError } from '@buildonce/errors';
import {
  appendGithubOutput,
  openStore,
  publishArtifact,
  publishMetadataFromEnv,
  resolveStoreLocation,
  ArtifactIntegrityError,
  type ArtifactNamespace,
  type PublishResult,
} from '@buildonce/store';
import { IMAGE_MANIFEST_FILE } from './assemble';
import { clientFor } from './credentials';
import { pushImage, layoutDirOf, type PushImageResult } from './push';
import { parseImageReference, repositoryUri, type ImageReference } from './reference';

/** Environment variable naming the registry repository images are pushed to (`host/repo`, e.g. an ECR repository URI). */
export const REGISTRY_ENV = 'BUILDONCE_REGISTRY';

/**
 * The registry repository to push to: the `registry` option, else `BUILDONCE_REGISTRY`.
 * @throws ConfigError when neither is set or the value has a tag/digest
 */
export function resolveRegistry(option: string | undefined, env: NodeJS.ProcessEnv = process.env): ImageReference {
  const value = option || env[REGISTRY_ENV];
  if (!value) throw new ConfigError(`no registry for the oci-image: set the publish target's "registry" option or ${REGISTRY_ENV}=<host>/<repository> (e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/rust-scorer)`);
  const ref = parseImageReference(value);
  if (ref.tag || ref.digest) throw new ConfigError(`registry "${value}" must be a repository (<host>/<repository>) without a tag or digest`);
  return ref;
}

/**
 * Tags of a published image: the version (immutable) and `sha-<commit>-<yyyymmdd>` (UTC publish date)
 * when the commit is known. Preview (untrusted) builds get `preview-<version>` instead, so a pull
 * request can never claim the version tag trusted promotions use (DESIGN invariant 6).
 */
export function imageTags(o: { version: string; namespace: ArtifactNamespace; commit?: string; publishedAt: string }): string[] {
  if (o.namespace === 'preview') return [`preview-${o.version}`];
  const tags = [o.version];
  if (o.commit && /^[0-9a-f]{7,64}$/.test(o.commit)) tags.push(`sha-${o.commit}-${o.publishedAt.slice(0, 10).replace(/-/g, '')}`);
  return tags;
}

export interface PublishImageBuildOptions {
  project: string;
  workspaceRoot: string;
  /** directory with artifact.json, image-manifest.json and oci/ (absolute) */
  outputDir: string;
  /** registry repository (`host/repo`); default BUILDONCE_REGISTRY */
  registry?: string;
  store?: string;
  preview?: boolean;
  dryRun?: boolean;
  env?: NodeJS.ProcessEnv;
  aws?: AwsClients;
  log: (line: string) => void;
}

export type PublishImageBuildResult = PublishResult & { version: string; namespace: ArtifactNamespace; push: PushImageResult };

/**
 * `publish` for an `oci-image` build: pushes the image layout to the registry (see {@link pushImage};
 * a re-publish uploads nothing), then records the version in the store like any artifact
 * (`manifest.json` with `registry: { repository, uri, tags }`, the image manifest as the one file),
 * so promotion, policy, releases and resolve work unchanged. Appends `image_uri=`, `digest=`,
 * `version=` to `$GITHUB_OUTPUT`.
 * @throws ConfigError (no registry), ArtifactConflictError (tag on another digest, or version stored with
 *   another digest), ArtifactIntegrityError (layout does not match artifact.json), RegistryError
 */
export async function publishImageBuild(o: PublishImageBuildOptions): Promise<PublishImageBuildResult> {
  const env = o.env ?? process.env;
  const tag = `[${o.project}]`;
  const log = (l: string) => o.log(`${tag} ${l}`);
  const manifest = await readBuildManifest(o.outputDir, o.project);
  if (manifest.kind !== 'oci-image' || !manifest.image) throw new ConfigError(`${o.project}: publishImageBuild needs an oci-image build, got ${manifest.kind}`);
  const d = await sha256File(join(o.outputDir, IMAGE_MANIFEST_FILE)).catch(() => undefined);
  if (!d || `sha256:${d.hex}` !== manifest.image.digest) {
    throw new ArtifactIntegrityError(`${join(o.outputDir, IMAGE_MANIFEST_FILE)} does not match artifact.json (image ${manifest.image.digest}): rebuild with nx run ${o.project}:build --skip-nx-cache`);
  }
  const target = resolveRegistry(o.registry, env);
  const location = resolveStoreLocation({ store: o.store, env, workspaceRoot: o.workspaceRoot });
  const store = openStore(location, { env });
  const metadata = publishMetadataFromEnv(env);
  const namespace: ArtifactNamespace = o.preview || !metadata.trusted ? 'preview' : 'trusted';
  const tags = imageTags({ version: manifest.version, namespace, commit: metadata.commit, publishedAt: metadata.publishedAt });
  const client = await clientFor(target, { configuredHost: target.registry, env, aws: o.aws ?? awsClients({ env }) });
  const push = await pushImage({ layoutDir: layoutDirOf(o.outputDir), target, client, tags, dryRun: o.dryRun, log });
  if (push.status === 'dry-run') {
    log(`dry run: would push ${push.uri} (${push.blobsUploaded} blob(s), ${push.bytesUploaded} bytes; ${push.blobsExisting} already there) with tags ${tags.join(', ')}`);
  } else {
    log(`${push.status === 'already-pushed' ? 'already in' : 'pushed to'} ${repositoryUri(target)}: ${push.uri} (uploaded ${push.blobsUploaded} blob(s), ${push.bytesUploaded} bytes; mounted ${push.blobsMounted}; ${push.blobsExisting} already there); tags ${tags.join(', ')}`);
  }
  const result = await publishArtifact({
    store,
    manifest,
    dir: o.outputDir,
    metadata,
    namespace,
    dryRun: o.dryRun,
    registry: { repository: repositoryUri(target), uri: push.uri, tags },
    log,
  });
  if (result.status === 'already-published') log(`version ${manifest.version} is already recorded at ${result.uri} (same image digest)`);
  else if (result.status === 'published') log(`recorded version ${manifest.version} at ${result.uri}${namespace === 'preview' ? ' (preview namespace)' : ''}`);
  if (result.status !== 'dry-run') await appendGithubOutput({ image_uri: push.uri, digest: push.digest, version: manifest.version, artifact_uri: result.uri }, env);
  return { ...result, version: manifest.version, namespace, push };
}

/**
 * True when an image URI by digest (`<host>/<repo>@sha256:…`) is in its registry (OCI distribution
 * `HEAD /v2/<repo>/manifests/<digest>`), using the credentials of {@link clientFor}.
 * @throws ImageConfigError when the URI has no digest; RegistryError/RegistryAuthError when the registry fails
 */
export async function imageExists(imageUri: string, o: { env?: NodeJS.ProcessEnv; aws?: AwsClients } = {}): Promise<boolean> {
  const env = o.env ?? process.env;
  const ref = parseImageReference(imageUri);
  if (!ref.digest) throw new ConfigError(`image URI "${imageUri}" has no digest: buildonce deploys images by digest`);
  const configured = env[REGISTRY_ENV] ? parseImageReference(env[REGISTRY_ENV]!).registry : undefined;
  const client = await clientFor(ref, { configuredHost: configured, env, aws: o.aws ?? awsClients({ env }) });
  return (await client.headManifest(ref.repository, ref.digest)) !== undefined;
}
