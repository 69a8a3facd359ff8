/**
 * Registry housekeeping used by retention and promotion: does a digest exist, tag it, untag, delete
 * by digest. ECR repositories go through the ECR API (BatchGetImage + PutImage to tag — the documented
 * "retag without pulling" path —, BatchDeleteImage by tag or digest, PutLifecyclePolicy); every other
 * registry through the OCI distribution API (HEAD/PUT/DELETE manifests; untag is not part of that API).
 */
import { createRequire } from 'node:module';
import type { AwsClients } from '@buildonce/aws';
import { clientFor } from './credentials';
import { ecrHost, parseImageReference, repositoryUri } from './reference';
import { MANIFEST_ACCEPT } from './oci';
import { RegistryError } from './errors';
import type { Version } from '@buildonce/values';

const lazy = createRequire(__filename);
const ecrSdk = () => lazy('@aws-sdk/client-ecr') as typeof import('@aws-sdk/client-ecr');

/** Housekeeping operations on one repository. */
export interface ImageAdmin {
  /** `host/repo` */
  repository: string;
  kind: 'ecr' | 'registry';
  exists(digest: string): Promise<boolean>;
  /** points `tag` at `digest` (no-op when it already does) */
  tag(digest: string, tag: string): Promise<void>;
  /** removes a tag (ECR); @returns false when the registry cannot untag (OCI distribution) or the tag is absent */
  untag(tag: string): Promise<boolean>;
  /** deletes the image manifest by digest (all its tags go with it); @returns whether it existed */
  deleteDigest(digest: string): Promise<boolean>;
  /** tags of the repository */
  listTags(): Promise<string[]>;
}

/**
 * Opens the admin for a repository URI (`host/repo`).
 * @param o.env credentials per registryCredentials (BUILDONCE_REGISTRY_* for the BUILDONCE_REGISTRY host)
 */
export async function openImageAdmin(repository: string, o: { env?: NodeJS.ProcessEnv; aws: AwsClients }): Promise<ImageAdmin> {
  const env = o.env ?? process.env;
  const ref = parseImageReference(repository);
  const ecr = ecrHost(ref.registry);
  if (ecr) return ecrAdmin(o.aws, ref.repository, repositoryUri(ref), ecr.account);
  const configured = env.BUILDONCE_REGISTRY ? parseImageReference(env.BUILDONCE_REGISTRY).registry : undefined;
  const client = await clientFor(ref, { configuredHost: configured, env, aws: o.aws });
  const repo = ref.repository;
  return {
    repository: repositoryUri(ref),
    kind: 'registry',
    exists: async (d) => (await client.headManifest(repo, d)) !== undefined,
    async tag(d, tag) {
      const cur = await client.headManifest(repo, tag);
      if (cur?.digest === d) return;
      const m = await client.getManifest(repo, d);
      await client.putManifest(repo, tag, m.bytes, m.mediaType);
    },
    untag: async () => false,
    deleteDigest: (d) => client.deleteManifest(repo, d),
    listTags: () => client.listTags(repo),
  };
}

/** ECR-backed admin for `repositoryName` (ECR API; works wherever the ECR API does, incl. moto). */
export function ecrAdmin(aws: AwsClients, repositoryName: string, repository: string, registryId?: string): ImageAdmin {
  const ids = registryId ? { registryId } : {};
  const send = <T>(cmd: unknown) => aws.ecr().send(cmd as never) as Promise<T>;
  const fail = (what: string, e: unknown): never => {
    throw new RegistryError(`ECR ${what} on ${repository} failed: ${(e as Error).name}: ${((e as Error).message ?? '').split('\n')[0]}`, undefined, {
      cause: e,
    });
  };
  const getImage = async (imageId: { imageDigest?: string; imageTag?: string }) => {
    const { BatchGetImageCommand } = ecrSdk();
    const r = await send<import('@aws-sdk/client-ecr').BatchGetImageCommandOutput>(
      new BatchGetImageCommand({ ...ids, repositoryName, imageIds: [imageId], acceptedMediaTypes: MANIFEST_ACCEPT.split(', ') }),
    ).catch((e) => fail('BatchGetImage', e));
    return r.images?.[0];
  };
  return {
    repository,
    kind: 'ecr',
    exists: async (d) => !!(await getImage({ imageDigest: d })),
    async tag(d, tag) {
      const img = await getImage({ imageDigest: d });
      if (!img?.imageManifest) throw new RegistryError(`ECR image ${repository}@${d} not found: cannot tag it ${tag}`);
      const existing = await getImage({ imageTag: tag });
      if (existing?.imageId?.imageDigest === d) return;
      const { PutImageCommand } = ecrSdk();
      await send(
        new PutImageCommand({
          ...ids,
          repositoryName,
          imageManifest: img.imageManifest,
          imageManifestMediaType: img.imageManifestMediaType,
          imageTag: tag,
          imageDigest: d,
        }),
      ).catch((e) => fail(`PutImage (tag ${tag})`, e));
    },
    async untag(tag) {
      const { BatchDeleteImageCommand } = ecrSdk();
      const r = await send<import('@aws-sdk/client-ecr').BatchDeleteImageCommandOutput>(
        new BatchDeleteImageCommand({ ...ids, repositoryName, imageIds: [{ imageTag: tag }] }),
      ).catch((e) => fail(`BatchDeleteImage (tag ${tag})`, e));
      return (r.imageIds?.length ?? 0) > 0;
    },
    async deleteDigest(d) {
      const { BatchDeleteImageCommand } = ecrSdk();
      const r = await send<import('@aws-sdk/client-ecr').BatchDeleteImageCommandOutput>(
        new BatchDeleteImageCommand({ ...ids, repositoryName, imageIds: [{ imageDigest: d }] }),
      ).catch((e) => fail(`BatchDeleteImage (${d})`, e));
      return (r.imageIds?.length ?? 0) > 0;
    },
    async listTags() {
      const { DescribeImagesCommand } = ecrSdk();
      const tags: string[] = [];
      let nextToken: string | undefined;
      do {
        const r: import('@aws-sdk/client-ecr').DescribeImagesCommandOutput = await send<import('@aws-sdk/client-ecr').DescribeImagesCommandOutput>(
          new DescribeImagesCommand({ ...ids, repositoryName, nextToken }),
        ).catch((e) => fail('DescribeImages', e));
        for (const d of r.imageDetails ?? []) tags.push(...(d.imageTags ?? []));
        nextToken = r.nextToken;
      } while (nextToken);
      return tags;
    },
  };
}

/** Tag prefix that marks an image retention must keep; the lifecycle policy's first rule never expires it. */
export const PROTECTED_TAG_PREFIX = 'keep-';

/** The protection tag of a version: `keep-<version>`. */
export function protectionTag(version: Version): string {
  return `${PROTECTED_TAG_PREFIX}${version}`;
}

export interface EcrLifecycleOptions {
  /** tagged images beyond the newest this-many (by push time) expire (default 30) */
  keepLast?: number;
  /** untagged images expire this many days after push (default 1) */
  untaggedDays?: number;
}

/**
 * An ECR lifecycle policy (ECR "Lifecycle policy properties") that can never expire a protected image:
 * rule 1 selects images with a `keep-` tag and keeps up to 10000 of them (far more than any protected
 * set), and ECR never lets a lower-priority rule expire an image that matches a higher-priority rule's
 * tag selection; rule 2 expires untagged images after `untaggedDays`; rule 3 (`any`, evaluated last)
 * expires all but the newest `keepLast` images. Retention keeps `keep-<version>` tags on exactly the
 * protected versions (current + rollback window in every environment) and promotion adds the tag
 * before a deploy, so an image an environment runs or may roll back to always carries one.
 */
export function ecrLifecyclePolicy(o: EcrLifecycleOptions = {}): { rules: object[] } {
  const keepLast = o.keepLast ?? 30;
  const untaggedDays = o.untaggedDays ?? 1;
  if (!Number.isInteger(keepLast) || keepLast < 1) throw new RangeError(`keepLast must be an integer >= 1, got ${keepLast}`);
  if (!Number.isInteger(untaggedDays) || untaggedDays < 1) throw new RangeError(`untaggedDays must be an integer >= 1, got ${untaggedDays}`);
  return {
    rules: [
      {
        rulePriority: 1,
        description: `buildonce: never expire protected images (tag ${PROTECTED_TAG_PREFIX}*: current or rollback window in an environment)`,
        selection: { tagStatus: 'tagged', tagPrefixList: [PROTECTED_TAG_PREFIX], countType: 'imageCountMoreThan', countNumber: 10000 },
        action: { type: 'expire' },
      },
      {
        rulePriority: 2,
        description: `buildonce: expire untagged images after ${untaggedDays} day(s)`,
        selection: { tagStatus: 'untagged', countType: 'sinceImagePushed', countUnit: 'days', countNumber: untaggedDays },
        action: { type: 'expire' },
      },
      {
        rulePriority: 3,
        description: `buildonce: keep the newest ${keepLast} images`,
        selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: keepLast },
        action: { type: 'expire' },
      },
    ],
  };
}

/**
 * Writes the lifecycle policy of an ECR repository (ECR PutLifecyclePolicy).
 * @param repository `<account>.dkr.ecr.<region>.amazonaws.com/<repo>` or a bare repository name
 * @returns the policy text written
 * @throws RegistryError when ECR refuses
 */
export async function putEcrLifecyclePolicy(aws: AwsClients, repository: string, o: EcrLifecycleOptions & { dryRun?: boolean } = {}): Promise<string> {
  const text = JSON.stringify(ecrLifecyclePolicy(o));
  const host = repository.includes('/') ? ecrHost(repository.split('/')[0]!) : undefined;
  const repositoryName = host ? repository.slice(repository.indexOf('/') + 1) : repository;
  if (o.dryRun) return text;
  const { PutLifecyclePolicyCommand } = ecrSdk();
  try {
    await aws.ecr().send(new PutLifecyclePolicyCommand({ ...(host ? { registryId: host.account } : {}), repositoryName, lifecyclePolicyText: text }));
  } catch (e) {
    throw new RegistryError(
      `ECR PutLifecyclePolicy on ${repositoryName} failed: ${(e as Error).name}: ${((e as Error).message ?? '').split('\n')[0]}`,
      undefined,
      { cause: e },
    );
  }
  return text;
}

/**
 * Marks an image an environment is about to run as protected: on ECR it gets the `keep-<version>` tag
 * (so the lifecycle policy can never expire it before retention re-evaluates); elsewhere a no-op
 * (retention deletes by digest only what it decided to delete).
 * @returns whether a tag was ensured
 * @throws RegistryError when ECR refuses
 */
export async function protectImage(imageUri: string, version: Version, o: { env?: NodeJS.ProcessEnv; aws: AwsClients }): Promise<boolean> {
  const ref = parseImageReference(imageUri);
  const ecr = ecrHost(ref.registry);
  if (!ecr || !ref.digest) return false;
  await ecrAdmin(o.aws, ref.repository, repositoryUri(ref), ecr.account).tag(ref.digest, protectionTag(version));
  return true;
}
