import type { AwsClients } from '@buildonce/aws';
import { openImageAdmin, protectionTag, type ImageAdmin } from '@buildonce/image';
import { readStoredManifest } from '@buildonce/store';
import type { StoredManifest } from '@buildonce/artifact';
import { runRetention, type RetentionOptions, type RetentionResult, type VersionInfo } from './retention';

export interface ImageRetentionOptions extends RetentionOptions {
  env?: NodeJS.ProcessEnv;
  /** the command's AWS clients (ECR admin and tokens), built once by libs/commands */
  aws: AwsClients;
  /** opens the registry admin of a repository (tests); default libs/image openImageAdmin */
  openAdmin?: (repository: string) => Promise<ImageAdmin>;
}

/** What image retention did besides the store retention. */
export interface ImageRetentionResult extends RetentionResult {
  images: {
    /** `host/repo@sha256:…` deleted from the registry (dry run: that would be) */
    deleted: string[];
    /** digests kept because a kept version (protected or not) records the same image */
    shared: string[];
    /** ECR only: `keep-<version>` tags added to protected images / removed from unprotected ones */
    tagged: string[];
    untagged: string[];
  };
}

const PROTECTING = new Set(['current', 'rollback-window']);

async function recordOf(o: RetentionOptions, v: VersionInfo): Promise<StoredManifest | undefined> {
  if (!v.complete) return undefined;
  return readStoredManifest(o.store, v.project, v.version, v.namespace).catch(() => undefined);
}

/**
 * Retention that also cleans the registry for `oci-image` versions ({@link runRetention} decides which
 * versions go; its protected set — current and rollback window in every environment, in-flight, preview
 * rules — is honoured unchanged):
 * 1. a dry-run plan reads the stored records (registry URI by digest) of the versions that will go;
 * 2. store retention runs (the records go first, so no promotion can pick those versions any more);
 * 3. each deleted version's image is deleted **by digest** through the registry API (ECR BatchDeleteImage
 *    for ECR) unless a kept version records the same digest;
 * 4. ECR only: protected versions carry a `keep-<version>` tag (added here, and by promotion) and kept but
 *    unprotected ones lose it, so the lifecycle policy of `putEcrLifecyclePolicy` never expires a protected image.
 * @throws everything runRetention throws; RegistryError when the registry refuses (after the store step)
 */
export async function runImageRetention(o: ImageRetentionOptions): Promise<ImageRetentionResult> {
  const log = o.log ?? (() => undefined);
  const { aws } = o;
  const admins = new Map<string, Promise<ImageAdmin>>();
  const admin = (repo: string) => {
    if (!admins.has(repo)) admins.set(repo, o.openAdmin ? o.openAdmin(repo) : openImageAdmin(repo, { env: o.env, aws }));
    return admins.get(repo)!;
  };
  // dry run: the plan is the result (logged as usual); otherwise a silent plan first, to read the records
  const plan = o.dryRun ? await runRetention(o) : await runRetention({ ...o, dryRun: true, log: () => undefined });
  const doomedRecords = new Map<string, StoredManifest>();
  for (const v of plan.deleted) {
    const r = await recordOf(o, v);
    if (r?.registry) doomedRecords.set(`${v.namespace}/${v.project}/${v.version}`, r);
  }
  const result = o.dryRun ? plan : await runRetention(o);
  const images: ImageRetentionResult['images'] = { deleted: [], shared: [], tagged: [], untagged: [] };

  const keptDigests = new Set<string>();
  const keptRecords: { v: (typeof result.kept)[number]; r: StoredManifest }[] = [];
  for (const v of result.kept) {
    const r = await recordOf(o, v);
    if (r?.registry && r.manifest.image) {
      keptDigests.add(`${r.registry.repository}@${r.manifest.image.digest}`);
      keptRecords.push({ v, r });
    }
  }
  for (const v of result.deleted) {
    const r = doomedRecords.get(`${v.namespace}/${v.project}/${v.version}`);
    if (!r?.registry || !r.manifest.image) continue;
    const id = `${r.registry.repository}@${r.manifest.image.digest}`;
    if (keptDigests.has(id)) {
      images.shared.push(id);
      log(`[${v.project}] image ${id} stays: a kept version records the same digest`);
      continue;
    }
    if (o.dryRun) {
      log(`[${v.project}] dry run: would delete image ${id}`);
      images.deleted.push(id);
      continue;
    }
    if (await (await admin(r.registry.repository)).deleteDigest(r.manifest.image.digest)) {
      images.deleted.push(id);
      log(`[${v.project}] deleted image ${id}`);
    }
  }
  for (const { v, r } of keptRecords) {
    const a = await admin(r.registry!.repository);
    if (a.kind !== 'ecr') continue;
    const tag = protectionTag(v.version);
    if (PROTECTING.has(v.reason)) {
      if (o.dryRun) continue;
      await a.tag(r.manifest.image!.digest, tag);
      images.tagged.push(`${a.repository}:${tag}`);
    } else if (!o.dryRun && (await a.untag(tag))) {
      images.untagged.push(`${a.repository}:${tag}`);
      log(`[${v.project}] removed ${a.repository}:${tag} (version ${v.version} is no longer protected)`);
    }
  }
  if (images.deleted.length) log(`${o.dryRun ? 'dry run: would delete' : 'deleted'} ${images.deleted.length} image(s) by digest`);
  return { ...result, images };
}
