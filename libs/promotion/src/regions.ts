import pLimit from 'p-limit';
import { settleBounded } from '@buildonce/retry';
import type { DeployRequest, DeployResult, DeployTarget } from '@buildonce/deploy';
import { checkStoreRegion, ensureRegionCopy, S3BlobStore, versionPrefix, type BlobStore } from '@buildonce/store';
import { ConfigError, isExpectedError, RecordFailedError, RegionFailureError } from '@buildonce/errors';
import { copyImageToRegistry, ecrHost, parseImageReference, type RegistryClient } from '@buildonce/image';
import { appendEntry, type CurrentPointer, type HistoryEntry, type RegionResult } from '@buildonce/ledger';
import type { VerifySetup } from '@buildonce/verification';
import { canaryOf, verifyOnTarget } from './verify-target';
import { locateArtifact, type VerifiedArtifact } from './artifact';
import { entryFields, type PromoteRequest } from './promote';

/*
 * Multi-region promotion (docs/promotion.md "Regions"): one ledger and one lock in the home store, one
 * deploy per region from that region's own store. Copies come first, for every region, so a replica
 * that is refused stops the promotion with nothing deployed anywhere; then every region deploys and
 * verifies (bounded parallel); one entry records each region's result. An oci-image's region copy is also
 * a copy of the image, by digest, into the region's registry (libs/image copyImageToRegistry), which the
 * region's deploy then runs.
 */

/** Regions deployed at once. */
export const REGIONS_IN_FLIGHT = 3;

/** One region of the environment a promotion deploys to. */
export interface PromotionRegion {
  /** AWS Region name */
  name: string;
  /** the region's store, with a client in that region (the home bucket when buildonce.json leaves `store` out) */
  store: S3BlobStore;
  /** true when `store` is the home store (nothing to copy) */
  home: boolean;
  /** the deploy target with clients in that region */
  target: DeployTarget;
  /** the environment's checks with clients in that region (absent: none) */
  verify?: VerifySetup;
  /** the region's image registry repository (`host/repo`, buildonce.json `regions.<r>.registry`): oci-images are copied there and deployed from it */
  registry?: string;
  /**
   * oci-image promotions: a client for a registry repository (`host/repo`) with the credentials for its host
   * (libs/image clientFor; an ECR host gets a token from ECR in the host's own region), for the region's
   * registry and for the one the image was published to.
   */
  registryClient?: (repository: string) => Promise<RegistryClient>;
}

/** How a region got its image: `published` (it deploys from the published repository) | `present` | `copied`. */
export type RegionImageCopy = NonNullable<RegionResult['image']>['copy'];

/**
 * The repository a region deploys an oci-image from (pure): its `registry` (an ECR repository must be in
 * that region), else, for the region on the home store only, the repository the image was published to
 * when that is not an ECR repository of another region. Undefined for other kinds.
 * @throws ConfigError (one line naming buildonce.json `environments.<env>.regions.<region>.registry`)
 */
export function regionImageRepository(
  r: Pick<PromoteRequest, 'project' | 'version' | 'environment'>,
  artifact: VerifiedArtifact,
  region: Pick<PromotionRegion, 'name' | 'home' | 'registry'>,
): string | undefined {
  const published = artifact.stored.registry?.repository;
  if (artifact.stored.manifest.kind !== 'oci-image' || !published) return undefined;
  const field = `buildonce.json environments.${r.environment.name}.regions.${region.name}.registry`;
  if (region.registry) {
    const other = ecrHost(parseImageReference(region.registry).registry)?.region;
    if (other && other !== region.name)
      throw new ConfigError(`${field}: ${region.registry} is an ECR repository in ${other}, not in ${region.name}: name the ${region.name} repository`);
    return region.registry;
  }
  const publishedIn = ecrHost(parseImageReference(published).registry)?.region;
  if (region.home && (!publishedIn || publishedIn === region.name)) return published;
  throw new ConfigError(
    `${r.project}@${r.version} is an oci-image and ${region.name} has no registry: set ${field} to a repository in ${region.name} (e.g. <account>.dkr.ecr.${region.name}.amazonaws.com/${published.slice(published.indexOf('/') + 1)}) to copy the image to`,
  );
}

/**
 * Makes the region's registry serve the verified image digest (libs/image copyImageToRegistry: HEAD, else
 * the manifests read by digest and checked, blobs mounted or streamed, manifests put by digest and read
 * back). Nothing to copy when the region deploys from the published repository.
 * @returns the image URI by digest the region deploys and how it got there (dry run: `present` or `copied` as planned)
 * @throws ConfigError (no client), ImageIntegrityError, ImageNotFoundError, RegistryError
 */
async function ensureRegionImage(
  repository: string,
  artifact: VerifiedArtifact,
  region: PromotionRegion,
  o: { dryRun?: boolean; log: (line: string) => void },
): Promise<{ uri: string; copy: RegionImageCopy }> {
  const published = artifact.stored.registry!.repository;
  const digest = artifact.stored.manifest.image!.digest;
  const uri = `${repository}@${digest}`;
  if (repository === published) return { uri, copy: 'published' };
  if (!region.registryClient) throw new ConfigError(`region ${region.name} has no registry client: the command layer must pass one for oci-images`);
  const src = parseImageReference(published);
  const dst = parseImageReference(repository);
  const [source, destination] = await Promise.all([region.registryClient(published), region.registryClient(repository)]);
  const c = await copyImageToRegistry({
    source,
    sourceRepository: src.repository,
    digest,
    destination,
    destinationRepository: dst.repository,
    dryRun: o.dryRun,
    log: o.log,
  });
  if (c.status === 'dry-run')
    o.log(
      `dry run: would copy image ${published}@${digest} to ${uri} (${c.blobsUploaded} blob(s) streamed, ${c.bytesUploaded} bytes; ${c.blobsMounted} mounted; ${c.blobsExisting} already there)`,
    );
  else if (c.status === 'present') o.log(`${repository} already serves ${digest}`);
  return { uri, copy: c.status === 'present' ? 'present' : 'copied' };
}

function homeStore(store: BlobStore): S3BlobStore {
  if (!(store instanceof S3BlobStore))
    throw new ConfigError(`environments with regions need an S3 home store, not ${store.location.url}: set BUILDONCE_STORE=s3://<bucket>/<prefix>`);
  return store;
}

const oneLine = (e: unknown) => ((e as Error)?.message ?? String(e)).split('\n')[0]!;

/** The request a region's target gets: the region's store, its log prefix, and for an oci-image the region's repository. */
function regionRequest(req: DeployRequest, region: PromotionRegion, image?: DeployRequest['imageSource']): DeployRequest {
  return { ...req, store: region.store, log: (l) => req.log(`[${region.name}] ${l}`), ...(image ? { imageSource: image } : {}) };
}

/** `Lambda f alias prod in us-east-1, eu-west-1` */
export function describeRegions(regions: PromotionRegion[], req: DeployRequest): string {
  return `${regions[0]!.target.describe(req)} in ${regions.map((r) => r.name).join(', ')}`;
}

/**
 * Everything a multi-region promotion checks before it takes the lock, with no side effects: every
 * region store's bucket is in its region (GetBucketLocation), every region's target accepts the version
 * (e.g. the Lambda function exists in that region); an oci-image needs a registry for every region (see
 * {@link regionImageRepository}); with `dryRun` the region copies it would make are listed (HEAD only; a
 * replica that differs is refused already here; an image's manifests are read from the source and checked).
 * @throws RegionStoreError, RegionReplicaMismatchError, DeployPreflightError (and subclasses), StoreAccessError, ConfigError,
 *   ImageIntegrityError (dry run)
 */
export async function preflightRegions(r: PromoteRequest, req: DeployRequest, artifact: VerifiedArtifact, regions: PromotionRegion[]): Promise<void> {
  const home = homeStore(r.store);
  const images = new Map(regions.map((g) => [g.name, regionImageRepository(r, artifact, g)]));
  await settleBounded(regions, REGIONS_IN_FLIGHT, async (region) => {
    await checkStoreRegion(region.store, region.name);
    const image = images.get(region.name);
    const published = image === artifact.stored.registry?.repository;
    const rreq = regionRequest(req, region, image ? { repository: image, copyPending: !published } : undefined);
    await region.target.preflight(rreq);
    if (r.dryRun && !region.home) {
      const plan = await ensureRegionCopy({ ...copyOf(home, region, r, artifact), dryRun: true, log: rreq.log });
      if (plan.status === 'present')
        rreq.log(`dry run: ${region.store.uriOf(versionPrefix(r.project, r.version, artifact.namespace))} already holds ${r.version} (verified)`);
    }
    if (r.dryRun && image && !published) await ensureRegionImage(image, artifact, region, { dryRun: true, log: rreq.log });
  });
}

function copyOf(home: S3BlobStore, region: PromotionRegion, r: Pick<PromoteRequest, 'project' | 'version'>, artifact: VerifiedArtifact) {
  return {
    home,
    replica: region.store,
    region: region.name,
    project: r.project,
    version: r.version,
    namespace: artifact.namespace,
    stored: artifact.stored,
    composites: artifact.composites,
  };
}

/** What a region holds before its deploy: the store copy and, for an oci-image, its image. */
export interface RegionCopies {
  copy: RegionResult['copy'];
  image?: { repository: string; uri: string; copy: RegionImageCopy };
}

/**
 * Makes every region's store hold the version (ensureRegionCopy: verified replica, or server-side copy
 * then verified) and, for an oci-image, every region's registry the image digest (see ensureRegionImage),
 * bounded parallel. Nothing is deployed.
 * @returns region → store copy `home` | `present` | `copied` (and the image's URI and copy)
 * @throws RegionReplicaMismatchError, StoreAccessError, ConfigError, ImageIntegrityError, ImageNotFoundError, RegistryError
 */
export async function copyToRegions(
  r: Pick<PromoteRequest, 'store' | 'project' | 'version' | 'log' | 'environment'>,
  artifact: VerifiedArtifact,
  regions: PromotionRegion[],
): Promise<Record<string, RegionCopies>> {
  const home = homeStore(r.store);
  const out: Record<string, RegionCopies> = {};
  // a refused replica fails the promotion only once every copy in flight has settled (the lock is still held)
  await settleBounded(regions, REGIONS_IN_FLIGHT, async (region) => {
    const log = (l: string) => r.log(`[${region.name}] ${l}`);
    const repository = regionImageRepository(r, artifact, region);
    let copy: RegionResult['copy'] = 'home';
    if (!region.home) copy = (await ensureRegionCopy({ ...copyOf(home, region, r, artifact), log })).status === 'copied' ? 'copied' : 'present';
    out[region.name] = { copy, ...(repository ? { image: { repository, ...(await ensureRegionImage(repository, artifact, region, { log })) } } : {}) };
  });
  return out;
}

/**
 * The multi-region deploy (under the lock): region copies for every region first (a refused replica
 * stops here, nothing deployed) → every region deploys (`restoreFrom`: re-activates that entry's
 * per-region deploy when the target can) and runs the environment's checks with its own clients,
 * {@link REGIONS_IN_FLIGHT} at a time → one history entry with every region's result.
 * All regions verified: `succeeded` (moves the pointer; `deploy` is the first region's result).
 * Otherwise, `regionFailure: rollback` (default) restores every region that was moved to `previous`
 * and records a `failed` entry; `hold` keeps the good regions and records a `failed`, `partial` entry
 * (downstream `requires` never accept it; the next promotion deploys every region again).
 * @param previous the pointer read under the lock (what a failure restores)
 * @throws RegionFailureError (one line: which regions failed, what was restored or held, the seq),
 *   RegionReplicaMismatchError, StoreAccessError, RecordFailedError
 */
export async function deployRegions(
  r: PromoteRequest,
  req: DeployRequest,
  artifact: VerifiedArtifact,
  regions: PromotionRegion[],
  o: { rollback: boolean; commit: string | null; previous: CurrentPointer | undefined; restoreFrom?: HistoryEntry },
): Promise<HistoryEntry> {
  const now = r.now ?? (() => new Date());
  const startedAt = now().toISOString();
  const env = r.environment;
  const copies = await copyToRegions(r, artifact, regions);
  const canary = canaryOf(env);
  const limit = pLimit(REGIONS_IN_FLIGHT);
  const results: Record<string, RegionResult> = {};
  let bug: unknown;
  await Promise.all(
    regions.map((region) =>
      limit(async () => {
        const copied = copies[region.name]!;
        const rreq = regionRequest(req, region, copied.image ? { repository: copied.image.repository } : undefined);
        const base = {
          store: region.store.location.url,
          copy: copied.copy,
          ...(copied.image ? { image: { uri: copied.image.uri, copy: copied.image.copy } } : {}),
        };
        const verified = !!region.verify?.checks.length || !!canary;
        const dreq: DeployRequest = canary ? { ...rreq, canary: { percent: canary.percent } } : rreq;
        let started: DeployResult;
        try {
          const from = regionDeployOf(o.restoreFrom, region.name);
          started = from && region.target.restore ? await region.target.restore(rreq, from) : await region.target.deploy(verified ? dreq : rreq);
        } catch (e) {
          if (!isExpectedError(e)) bug ??= e;
          results[region.name] = { ...base, status: 'failed', deploy: null, error: oneLine(e) };
          rreq.log(`deploy failed: ${oneLine(e)}`);
          return;
        }
        if (!verified) return void (results[region.name] = { ...base, status: 'succeeded', deploy: started });
        try {
          const v = await verifyOnTarget({
            target: region.target,
            dreq,
            setup: region.verify,
            started,
            project: r.project,
            environment: env,
            version: r.version,
            log: rreq.log,
          });
          const verification = v.verification ? { verification: v.verification } : {};
          results[region.name] = v.failure
            ? { ...base, status: 'failed', deploy: v.result, ...verification, error: `verification failed: ${v.failure}` }
            : { ...base, status: 'succeeded', deploy: v.result, ...verification };
          if (v.failure) rreq.log(`verification failed: ${v.failure}`);
        } catch (e) {
          if (!isExpectedError(e)) bug ??= e;
          results[region.name] = { ...base, status: 'failed', deploy: started, error: `verification failed: ${oneLine(e)}` };
        }
      }),
    ),
  );
  const entryBase = entryFields(r, artifact, { rollback: o.rollback, commit: o.commit, startedAt });
  const ordered = () => Object.fromEntries(regions.map((g) => [g.name, results[g.name]!]));
  const failed = regions.filter((g) => results[g.name]!.status !== 'succeeded').map((g) => g.name);
  if (!failed.length) {
    let appended: Awaited<ReturnType<typeof appendEntry>>;
    try {
      appended = await appendEntry(r.store, {
        ...entryBase,
        status: 'succeeded',
        deploy: results[regions[0]!.name]!.deploy,
        regions: ordered(),
        finishedAt: now().toISOString(),
      });
    } catch (e) {
      throw new RecordFailedError(
        `deployed ${r.version} to ${env.name} in ${regions.map((g) => g.name).join(', ')} but could not record it: ${oneLine(e)}; the lock is left to expire so the next promotion records it as interrupted`,
      );
    }
    const { entry } = appended;
    r.log(
      `recorded ${env.name} seq ${entry.seq}: ${entry.previousVersion ?? 'none'} → ${entry.version}${o.rollback ? ' (rollback)' : ''} in ${regions.length} region(s) (${regions.map((g) => `${g.name}: ${copies[g.name]!.copy}${copies[g.name]!.image ? `, image ${copies[g.name]!.image!.copy}` : ''}`).join(', ')})`,
    );
    return entry;
  }

  const why = failed.map((n) => `${n}: ${results[n]!.error}`).join('; ');
  const moved = regions.filter((g) => results[g.name]!.deploy);
  const mode = (env.kind === 'chain' && env.regionFailure) || 'rollback';
  let outcome: string;
  if (mode === 'hold') {
    const good = regions.filter((g) => results[g.name]!.status === 'succeeded').map((g) => g.name);
    outcome = good.length
      ? `regionFailure is hold: ${good.join(', ')} keep ${r.version} (a partial release, which downstream environments refuse); promote ${r.version} again once fixed, or rollback --env=${env.name}`
      : `no region runs ${r.version}`;
  } else if (!o.previous) {
    outcome = moved.length
      ? `nothing to restore (first release of ${r.project} in ${env.name}): ${moved.map((g) => g.name).join(', ')} keep ${r.version}`
      : 'nothing was changed';
  } else {
    await restoreRegions(
      r,
      req,
      regions.filter((g) => results[g.name]!.deploy),
      results,
      o.previous.entry,
    );
    const restored = regions.filter((g) => results[g.name]!.status === 'restored').map((g) => g.name);
    const stuck = regions.filter((g) => results[g.name]!.status === 'not-restored').map((g) => g.name);
    outcome = `${restored.length ? `restored ${restored.join(', ')} to ${o.previous.entry.version}` : 'no region had moved'}${stuck.length ? `; restoring ${stuck.join(', ')} failed (they run ${r.version}): fix that, then rollback --env=${env.name}` : ''}`;
  }
  // what the target runs: a region left on the new version makes this entry the deployed one
  const running = regions.find((g) => ['succeeded', 'failed', 'not-restored'].includes(results[g.name]!.status) && results[g.name]!.deploy);
  let seq: number | undefined;
  try {
    seq = (
      await appendEntry(r.store, {
        ...entryBase,
        status: 'failed',
        deploy: running ? results[running.name]!.deploy : null,
        regions: ordered(),
        ...(mode === 'hold' && moved.some((g) => results[g.name]!.status === 'succeeded') ? { partial: true } : {}),
        error: `failed in ${why}`.slice(0, 2000),
        finishedAt: now().toISOString(),
      })
    ).entry.seq;
  } catch (e) {
    throw new RecordFailedError(
      `${r.version} failed in ${failed.join(', ')} of ${env.name} (${why}) and could not be recorded: ${oneLine(e)}; the lock is left to expire so the next promotion records it as interrupted`,
    );
  }
  if (bug) throw bug; // a bug in a target: recorded above, reported with its stack
  throw new RegionFailureError(`${r.version} failed in ${env.name} (seq ${seq}): ${why}; ${outcome}`, { seq });
}

/** The deploy result an entry recorded for a region (undefined for an entry without per-region results). */
function regionDeployOf(entry: HistoryEntry | undefined, region: string): DeployResult | undefined {
  return entry?.regions?.[region]?.deploy ?? undefined;
}

/**
 * Restores every region that was moved to the previous release: its region copy (ensured, in case the
 * region was added since), then the target's `restore` of that region's recorded deploy (else a deploy).
 * Sets each region's status to `restored` or `not-restored` in `results`.
 */
async function restoreRegions(
  r: PromoteRequest,
  req: DeployRequest,
  moved: PromotionRegion[],
  results: Record<string, RegionResult>,
  prev: HistoryEntry,
): Promise<void> {
  let prevArtifact: VerifiedArtifact;
  try {
    prevArtifact = await locateArtifact(r.store, r.project, prev.version, r.environment);
  } catch (e) {
    for (const g of moved) Object.assign(results[g.name]!, { status: 'not-restored', error: `${results[g.name]!.error ?? 'moved'}; restore: ${oneLine(e)}` });
    return;
  }
  const pr = { ...r, version: prev.version };
  const limit = pLimit(REGIONS_IN_FLIGHT);
  await Promise.all(
    moved.map((region) =>
      limit(async () => {
        const prevReq = { ...req, version: prev.version, namespace: prevArtifact.namespace, stored: prevArtifact.stored };
        let preq = regionRequest(prevReq, region);
        try {
          if (!region.home) await ensureRegionCopy({ ...copyOf(homeStore(r.store), region, pr, prevArtifact), log: preq.log });
          const repository = regionImageRepository(pr, prevArtifact, region);
          if (repository) {
            await ensureRegionImage(repository, prevArtifact, region, { log: preq.log });
            preq = regionRequest(prevReq, region, { repository });
          }
          const from = regionDeployOf(prev, region.name);
          preq.log(`restoring ${prev.version} (seq ${prev.seq})`);
          const back = from && region.target.restore ? await region.target.restore(preq, from) : await region.target.deploy(preq);
          Object.assign(results[region.name]!, { status: 'restored', restore: back });
        } catch (e) {
          Object.assign(results[region.name]!, { status: 'not-restored', error: `${results[region.name]!.error ?? 'deployed'}; restore: ${oneLine(e)}` });
        }
      }),
    ),
  );
}
