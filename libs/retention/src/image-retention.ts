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
  /**
   * the region registry repositories of the environments (buildonce.json `environments[].regions.<r>.registry`,
   * distinct), each with its admin opened by the command layer with clients in the repository's own region
   * (ECR acts per region); absent: only the repositories images were published to are cleaned
   */
  regionRegistries?: RegionRegistry[];
}

/** A region's image registry repository as retention cleans it. */
export interface RegionRegistry {
  /** AWS Region name (the first region listing the repository) */
  region: string;
  /** `host/repo` */
  repository: string;
  /** opens the repository's admin (built once per repository by the caller; ECR: a client in that region) */
  admin: () => Promise<ImageAdmin>;
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
    /**
     * per region registry repository: `host/repo@sha256:…` deleted there (dry run: that would be, present
     * there) and ECR `host/repo:keep-<version>` tags added/removed there (dry run: that would be)
     */
    regions: { region: string; repository: string; deleted: string[]; tagged: string[]; untagged: string[] }[];
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
 *    unprotected ones lose it, so the lifecycle policy of `putEcrLifecyclePolicy` never expires a protected image;
 * 5. every region registry repository ({@link ImageRetentionOptions.regionRegistries}, where promotion copied
 *    images by digest) gets the same two rules: a deleted version's digest is deleted there unless any kept
 *    version records the same digest (absent there: nothing to do), and on ECR a kept version's image present
 *    there is tagged `keep-<version>` when protected and loses that tag when not. A region repository that is
 *    also the version's published repository was handled in 3–4. Dry run: HEADs and tag listings only, each
 *    deletion and tag change it would make is logged with its region.
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
  const images: ImageRetentionResult['images'] = { deleted: [], shared: [], tagged: [], untagged: [], regions: [] };
  const doomedImages: { v: VersionInfo; r: StoredManifest }[] = [];

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
    doomedImages.push({ v, r });
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
  images.regions = await cleanRegionRegistries(o, doomedImages, keptRecords, log);
  const inRegions = images.regions.reduce((n, g) => n + g.deleted.length, 0);
  if (images.deleted.length || inRegions)
    log(
      `${o.dryRun ? 'dry run: would delete' : 'deleted'} ${images.deleted.length} image(s) by digest${inRegions ? ` and ${inRegions} region copy(ies) in ${images.regions.filter((g) => g.deleted.length).length} region registry(ies)` : ''}`,
    );
  return { ...result, images };
}

/**
 * Step 5 of {@link runImageRetention}: the region registry repositories, one at a time (ECR API or OCI
 * distribution API as libs/image openImageAdmin chooses). A doomed digest stays when any kept version records
 * it (whatever repository it was published to: a region repository may hold images of several projects).
 * @returns one row per region repository
 * @throws RegistryError when a registry refuses
 */
async function cleanRegionRegistries(
  o: ImageRetentionOptions,
  doomed: { v: VersionInfo; r: StoredManifest }[],
  kept: { v: RetentionResult['kept'][number]; r: StoredManifest }[],
  log: (line: string) => void,
): Promise<ImageRetentionResult['images']['regions']> {
  const rows: ImageRetentionResult['images']['regions'] = [];
  const keptDigests = new Set(kept.map(({ r }) => r.manifest.image!.digest));
  for (const g of o.regionRegistries ?? []) {
    const row = { region: g.region, repository: g.repository, deleted: [] as string[], tagged: [] as string[], untagged: [] as string[] };
    rows.push(row);
    // a region repository that is also a version's published repository was cleaned at home (steps 3-4)
    const notHome = (r: StoredManifest) => r.registry!.repository !== g.repository;
    const todo = doomed.filter(({ r }) => notHome(r) && !keptDigests.has(r.manifest.image!.digest));
    const tagging = kept.filter(({ r }) => notHome(r));
    if (!todo.length && !tagging.length) continue;
    const a = await g.admin();
    const at = `[${g.region}]`;
    for (const { v, r } of todo) {
      const digest = r.manifest.image!.digest;
      const id = `${a.repository}@${digest}`;
      if (o.dryRun) {
        if (!(await a.exists(digest))) continue;
        log(`${at} [${v.project}] dry run: would delete image ${id}`);
        row.deleted.push(id);
      } else if (await a.deleteDigest(digest)) {
        log(`${at} [${v.project}] deleted image ${id}`);
        row.deleted.push(id);
      }
    }
    if (a.kind !== 'ecr') continue;
    let tags: Set<string> | undefined;
    const tagsNow = async () => (tags ??= new Set(await a.listTags()));
    for (const { v, r } of tagging) {
      const tag = protectionTag(v.version);
      const digest = r.manifest.image!.digest;
      if (PROTECTING.has(v.reason)) {
        // a version never promoted to this region has no image here: nothing to protect
        if (!(await a.exists(digest))) continue;
        if (o.dryRun) {
          if ((await tagsNow()).has(tag)) continue;
          log(`${at} [${v.project}] dry run: would tag ${a.repository}@${digest} ${tag} (version ${v.version} is protected)`);
        } else {
          await a.tag(digest, tag);
          log(`${at} [${v.project}] ${a.repository}@${digest} carries ${tag} (version ${v.version} is protected)`);
        }
        row.tagged.push(`${a.repository}:${tag}`);
      } else if (o.dryRun) {
        if (!(await tagsNow()).has(tag)) continue;
        log(`${at} [${v.project}] dry run: would remove ${a.repository}:${tag} (version ${v.version} is no longer protected)`);
        row.untagged.push(`${a.repository}:${tag}`);
      } else if (await a.untag(tag)) {
        log(`${at} [${v.project}] removed ${a.repository}:${tag} (version ${v.version} is no longer protected)`);
        row.untagged.push(`${a.repository}:${tag}`);
      }
    }
  }
  return rows;
}
