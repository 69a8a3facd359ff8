import type { AwsClients } from '@buildonce/aws';
import type { BlobStore } from '@buildonce/store';
import { imageUriOf } from '@buildonce/artifact';
import { mainFile, type DeployRequest, type DeployResult, type DeployTarget } from '@buildonce/deploy';
import type { ResolvedEnvironment } from '@buildonce/config';
import { locateArtifact, type VerifiedArtifact } from './artifact';
import { isExpectedError } from '@buildonce/errors';
import { DeployError } from '@buildonce/deploy';
import { LedgerError, PolicyError, RecordFailedError } from '@buildonce/errors';
import {
  appendEntry,
  changedTarget,
  findEntry,
  INTERRUPTED_ERROR_PREFIX,
  isInterrupted,
  readCurrent,
  type EntryDraft,
  type HistoryEntry,
} from '@buildonce/ledger';
import { acquireLock, readLease, type HeldLock, type InterruptedLease } from '@buildonce/ledger';
import type { PromotionMetadata } from './metadata';
import { checkPolicy } from './policy';
import { isVerifiedSuccess } from './gates';
import { checkProvenance } from './provenance';
import { VerificationFailedError, type VerifiedDeploy, type VerifySetup } from '@buildonce/verification';
import { canaryOf, verifyOnTarget } from './verify-target';
import type { ProjectName, Version } from '@buildonce/values';
import { deployRegions, describeRegions, preflightRegions, type PromotionRegion } from './regions';

/** Inputs of one promotion (or rollback) of one project to one environment. */
export interface PromoteRequest {
  store: BlobStore;
  project: ProjectName;
  version: Version;
  environment: ResolvedEnvironment;
  target: DeployTarget;
  meta: PromotionMetadata;
  /** lock lease and wait, ms (buildonce.json `lock`) */
  lock?: { ttlMs: number; waitMs: number };
  /** check everything, deploy and record nothing */
  dryRun?: boolean;
  /** one line per step, unprefixed (the caller adds `[project]`) */
  log: (line: string) => void;
  now?: () => Date;
  /** verification after the deploy (checks of the environment for this project; absent: none) */
  verify?: VerifySetup;
  /**
   * environments with regions: each region's store, target and checks (docs/promotion.md "Regions");
   * `target` and `verify` are then unused. Absent or empty: one region, `target`.
   */
  regions?: PromotionRegion[];
  /** the command's AWS clients (libs/aws, built once by libs/commands): KMS for `kms:` provenance keys */
  aws: AwsClients;
}

/** What a promotion did. */
export type PromoteResult =
  | { status: 'promoted'; entry: HistoryEntry }
  | { status: 'already-current'; entry: HistoryEntry }
  | { status: 'dry-run'; version: Version; previousVersion: Version | null; target: string; artifact: VerifiedArtifact };

/** The artifact part of a history entry, from the verified artifact. */
export function artifactOf(a: VerifiedArtifact): EntryDraft['artifact'] {
  const file = mainFile(a.stored.manifest);
  return {
    uri: a.uri,
    namespace: a.namespace,
    kind: a.stored.manifest.kind,
    file: file.name,
    sha256: file.sha256,
    files: a.stored.manifest.files,
    ...(a.stored.publish.commit ? { publishedCommit: a.stored.publish.commit } : {}),
    ...(a.provenance ? { provenance: a.provenance } : {}),
    ...(a.stored.registry ? { imageUri: imageUriOf(a.stored) } : {}),
  };
}

/**
 * Promotes a published version (docs/architecture.md "Flows"): no-op when it is already current → verify the
 * stored manifest and every file (trusted namespace for chain environments) → signed provenance
 * (environments with a `provenance` policy) → policy (required
 * upstream environments, soak) → target preflight → lock → deploy → history entry + pointer CAS.
 * Everything before the deploy changes nothing when it refuses. A deploy that fails is recorded as a
 * `failed` entry (pointer unchanged) and rethrown as DeployError (with its seq).
 * @throws PolicyError, ProvenanceRefusedError, UntrustedArtifactError, ArtifactNotFoundError, ArtifactIntegrityError,
 *   DeployPreflightError (and subclasses, e.g. LambdaFunctionNotFoundError), LockTimeoutError,
 *   DeployError, LedgerError, StoreAccessError
 */
export async function promoteVersion(r: PromoteRequest): Promise<PromoteResult> {
  const { store, project, version, environment: env, log } = r;
  const now = r.now ?? (() => new Date());
  const current = await readCurrent(store, project, env.name);
  if (current && (await isLive(r, version, current)) && !(await promotionInFlight(r))) {
    log(`version ${version} is already current in ${env.name} (seq ${current.entry.seq}): nothing to do`);
    return { status: 'already-current', entry: current.entry };
  }
  const artifact = await locateArtifact(store, project, version, env);
  log(`verified ${artifact.uri} (${artifact.stored.manifest.files.length} file(s), sha256 ok, ${artifact.namespace})`);
  // signed provenance: verified before the policy check where the environment requires it
  artifact.provenance = await checkProvenance({ store, project, version, environment: env, artifact, log, kms: r.aws.kms });

  const upstream: Record<string, HistoryEntry | undefined> = {};
  for (const req of env.requires) {
    upstream[req] = await findEntry(store, project, req, (e) => e.version === version && isVerifiedSuccess(e));
  }
  const decision = checkPolicy(env, version, upstream, now());
  if (!decision.ok) throw new PolicyError(decision.reason);
  if (env.requires.length) log(`policy ok: ${env.requires.map((q) => `succeeded in ${q} (seq ${upstream[q]!.seq})`).join(', ')}`);

  const req: DeployRequest = { project, environment: env.name, version, namespace: artifact.namespace, stored: artifact.stored, store, dryRun: r.dryRun, log };
  return deployUnderLock(r, req, artifact, {
    purpose: `promote ${version}`,
    dryRun: (where) => `dry run: would deploy ${version} to ${where} and record it in ${env.name} (current: ${current?.entry.version ?? 'none'})`,
    previousVersion: current?.entry.version ?? null,
    deploy: async (again, regions, where) => {
      log(`deploying ${version} to ${where}`);
      if (regions) return deployRegions(r, req, artifact, regions, { rollback: false, commit: r.meta.commit, previous: again });
      return deployVerifyAndRecord(r, req, artifact, again);
    },
  });
}

/**
 * What a promotion and a rollback do once the artifact is verified: the target's preflight (every region's,
 * for environments with regions), then the dry-run answer, or under the lock ({@link withLock}) the deploy
 * unless `r.version` became current while waiting (`already-current`, {@link isLive}). After taking over an
 * interrupted promotion the live target may run anything: it deploys again.
 * @param o.dryRun the dry run's line, given how the deploy is described
 * @param o.deploy deploys and records, given the current release read under the lock and the regions
 * @throws whatever the preflight, the lock and `o.deploy` throw
 */
export async function deployUnderLock(
  r: PromoteRequest,
  req: DeployRequest,
  artifact: VerifiedArtifact,
  o: {
    purpose: string;
    dryRun: (where: string) => string;
    previousVersion: Version | null;
    deploy: (again: Awaited<ReturnType<typeof readCurrent>>, regions: PromotionRegion[] | undefined, where: string) => Promise<HistoryEntry>;
  },
): Promise<PromoteResult> {
  const { store, project, version, log } = r;
  const env = r.environment;
  const regions = r.regions?.length ? r.regions : undefined;
  if (regions) await preflightRegions(r, req, artifact, regions);
  else await r.target.preflight(req);
  const where = regions ? describeRegions(regions, req) : r.target.describe(req);
  if (r.dryRun) {
    log(o.dryRun(where));
    return { status: 'dry-run', version, previousVersion: o.previousVersion, target: where, artifact };
  }
  return withLock(r, o.purpose, async ({ tookOver, assertHeld }) => {
    const again = await readCurrent(store, project, env.name);
    if (again && !tookOver && (await isLive(r, version, again))) {
      log(`version ${version} became current in ${env.name} while waiting (seq ${again.entry.seq}): nothing to do`);
      return { status: 'already-current', entry: again.entry };
    }
    assertHeld();
    return { status: 'promoted', entry: await o.deploy(again, regions, where) };
  });
}

/**
 * True when `version` is the pointer's version AND what the target runs: the newest history entry
 * that changed the target ({@link changedTarget}: `deploy` set, succeeded or failed) is of that version.
 * A failed verification that was held, or whose restore failed, leaves another version running under an
 * unchanged pointer, and after an interrupted promotion what runs is unknown: "already current" must not
 * be answered then.
 */
export async function isLive(
  r: Pick<PromoteRequest, 'store' | 'project' | 'environment'>,
  version: Version,
  current: Awaited<ReturnType<typeof readCurrent>>,
): Promise<boolean> {
  if (current?.entry.version !== version) return false;
  const live = await findEntry(r.store, r.project, r.environment.name, changedTarget);
  return !live || (live.version === version && !isInterrupted(live));
}

/**
 * True when the environment's lock is held, live or expired, or carries promotions not yet recorded:
 * a promotion is running or one stopped mid-deploy without recording, so the ledger's current version
 * may not be what the target runs and "already current" must be decided under the lock.
 */
export async function promotionInFlight(r: Pick<PromoteRequest, 'store' | 'project' | 'environment'>): Promise<boolean> {
  const lease = await readLease(r.store, r.project, r.environment.name);
  return lease?.state === 'held' || !!lease?.unrecorded?.length;
}

/**
 * Runs `fn` under the project+environment lock. Promotions whose holders stopped before recording (an
 * expired lease taken over, and any it still carried) are recorded first as `interrupted` failed
 * entries; `fn` learns through `tookOver` that the target may run anything, and calls `assertHeld` right
 * before it deploys (a lease lost to expiry must not deploy). If they cannot be recorded
 * a one-line LedgerError is thrown and the lease keeps carrying them (it was written with them in the
 * takeover's own compare-and-swap), so the next promotion records them: an interrupted deploy never
 * vanishes from history, whatever fails after the takeover.
 * @throws LedgerError, LockTimeoutError, and whatever `fn` throws
 */
export async function withLock<T>(r: PromoteRequest, purpose: string, fn: (o: { tookOver: boolean; assertHeld: () => void }) => Promise<T>): Promise<T> {
  const lock: HeldLock = await acquireLock({
    store: r.store,
    project: r.project,
    env: r.environment.name,
    actor: r.meta.actor,
    runId: r.meta.runId,
    purpose,
    version: r.version,
    ttlMs: r.lock?.ttlMs,
    waitMs: r.lock?.waitMs,
    log: r.log,
  });
  let abandon = false;
  try {
    for (const l of lock.unrecorded) {
      try {
        await recordInterrupted(r, l);
      } catch (e) {
        throw new LedgerError(
          `could not record the interrupted promotion of ${l.version} by ${l.actor}: ${((e as Error)?.message ?? String(e)).split('\n')[0]}; the lock keeps it so the next promotion records it: retry`,
          { cause: e },
        );
      }
    }
    lock.recorded();
    const assertHeld = () => {
      // a holder whose renewals failed until the lease expired must not deploy over the promotion that took it over
      if (!lock.held)
        throw new LedgerError(
          `lost the ${r.environment.name} lock before deploying ${r.version} (its lease expired and another promotion took it over): nothing was deployed; retry`,
        );
    };
    return await fn({ tookOver: lock.unrecorded.length > 0, assertHeld });
  } catch (e) {
    abandon = e instanceof RecordFailedError;
    throw e;
  } finally {
    if (abandon) await lock.abandon();
    else await lock.release();
  }
}

/** Records a `failed` entry for a promotion whose holder stopped renewing its lease mid-deploy (crash, cancelled job). */
async function recordInterrupted(r: PromoteRequest, lease: InterruptedLease): Promise<void> {
  if (!lease.version) return;
  const done = await findEntry(
    r.store,
    r.project,
    r.environment.name,
    (e) => e.version === lease.version && Date.parse(e.startedAt) >= Date.parse(lease.acquiredAt) - 1000,
  );
  if (done) return;
  const artifact = artifactOf(await locateArtifact(r.store, r.project, lease.version, r.environment));
  const t = r.now?.() ?? new Date();
  const { entry } = await appendEntry(r.store, {
    project: r.project,
    environment: r.environment.name,
    version: lease.version,
    status: 'failed',
    rollback: lease.purpose.startsWith('rollback'),
    artifact,
    deploy: null,
    error: `${INTERRUPTED_ERROR_PREFIX}"${lease.purpose}" by ${lease.actor}${lease.runId ? ` (run ${lease.runId})` : ''} stopped before recording (lease expired ${lease.expiresAt}); its deploy may be partly applied`,
    commit: null,
    runId: lease.runId,
    actor: lease.actor,
    startedAt: lease.acquiredAt,
    finishedAt: t.toISOString(),
  });
  r.log(`recorded interrupted promotion of ${lease.version} by ${lease.actor} as seq ${entry.seq} (failed)`);
}

/**
 * Deploys (or, with `restore`, re-activates) and appends the history entry. Success moves the
 * pointer; failure appends a `failed` entry and throws DeployError.
 */
export async function deployAndRecord(
  r: PromoteRequest,
  req: DeployRequest,
  artifact: VerifiedArtifact,
  o: {
    rollback: boolean;
    commit: string | null;
    restore?: DeployResult;
    verify?: (started: DeployResult) => Promise<VerifiedDeploy>;
    automatic?: { reason: string };
  },
): Promise<HistoryEntry> {
  const now = r.now ?? (() => new Date());
  const startedAt = now().toISOString();
  const base = entryFields(r, artifact, { ...o, startedAt });
  let result: DeployResult;
  try {
    result = o.restore && r.target.restore ? await r.target.restore(req, o.restore) : await r.target.deploy(req);
  } catch (e) {
    const reason = ((e as Error)?.message ?? String(e)).split('\n')[0]!;
    let seq: number | undefined;
    try {
      seq = (await appendEntry(r.store, { ...base, status: 'failed', deploy: null, error: reason, finishedAt: now().toISOString() })).entry.seq;
    } catch (recordErr) {
      r.log(`could not record the failure: ${(recordErr as Error).message}`);
    }
    if (!isExpectedError(e)) throw e; // a bug in a target: recorded above, reported with its stack
    throw new DeployError(`deploy of ${r.version} to ${r.environment.name} failed${seq ? ` (recorded as seq ${seq})` : ''}: ${reason}`, { seq, cause: e });
  }
  let verification: VerifiedDeploy['verification'];
  if (o.verify) {
    const v = await o.verify(result);
    ({ result, verification } = v);
    if (v.failure) {
      let seq: number;
      try {
        seq = (
          await appendEntry(r.store, {
            ...base,
            status: 'failed',
            deploy: result,
            ...(verification ? { verification } : {}),
            error: v.failure,
            finishedAt: now().toISOString(),
          })
        ).entry.seq;
      } catch (e) {
        throw new RecordFailedError(
          `${r.version} failed verification in ${r.environment.name} (${v.failure}) but could not be recorded: ${((e as Error).message ?? String(e)).split('\n')[0]}; nothing was restored and the lock is left to expire so the next promotion records it as interrupted`,
        );
      }
      throw new VerificationFailedError(`${r.version} in ${r.environment.name} (seq ${seq}): ${v.failure}`, {
        verification,
        seq,
        onFailure: v.onFailure ?? 'rollback',
      });
    }
  }
  let appended: Awaited<ReturnType<typeof appendEntry>>;
  try {
    appended = await appendEntry(r.store, {
      ...base,
      status: 'succeeded',
      deploy: result,
      ...(verification ? { verification } : {}),
      finishedAt: now().toISOString(),
    });
  } catch (e) {
    throw new RecordFailedError(
      `deployed ${r.version} to ${r.environment.name} but could not record it: ${((e as Error).message ?? String(e)).split('\n')[0]}; the lock is left to expire so the next promotion records it as interrupted`,
    );
  }
  const { entry, repaired } = appended;
  if (repaired.length) r.log(`advanced ${r.environment.name} pointer over seq ${repaired.join(', ')} left by interrupted writers`);
  r.log(`recorded ${r.environment.name} seq ${entry.seq}: ${entry.previousVersion ?? 'none'} → ${entry.version}${o.rollback ? ' (rollback)' : ''}`);
  return entry;
}

/** Records a restore that could not start (the previous version no longer verifies) as a failed rollback entry. */
async function recordFailedRestore(r: PromoteRequest, prev: HistoryEntry, err: Error): Promise<void> {
  const t = (r.now ?? (() => new Date()))().toISOString();
  const { entry } = await appendEntry(r.store, {
    project: r.project,
    environment: r.environment.name,
    version: prev.version,
    status: 'failed',
    rollback: true,
    artifact: prev.artifact,
    deploy: null,
    error: `restore after a failed verification: ${(err.message ?? String(err)).split('\n')[0]}`,
    commit: prev.commit,
    runId: r.meta.runId,
    actor: r.meta.actor,
    startedAt: t,
    finishedAt: t,
  });
  r.log(`recorded the failed restore of ${prev.version} as seq ${entry.seq} (failed)`);
}

/**
 * The promotion's deploy (under the lock): deploy (Lambda canary when the environment's `strategy`
 * asks) → verification ({@link verifyDeploy}) → record. Only a verified deploy is recorded as
 * `succeeded` (moves the pointer). A failed check is recorded as a `failed` entry (with its
 * `verification`); with `onFailure: rollback` (default) the version that was current is restored
 * through the target's `restore` and recorded as an automatic `rollback` entry.
 * @param current the pointer read under the lock (what to restore)
 * @throws VerificationFailedError (one line: version, environment, seq, check, what it saw, what was restored), DeployError
 */
async function deployVerifyAndRecord(
  r: PromoteRequest,
  req: DeployRequest,
  artifact: VerifiedArtifact,
  current: Awaited<ReturnType<typeof readCurrent>>,
): Promise<HistoryEntry> {
  const canary = canaryOf(r.environment);
  if (!r.verify?.checks.length && !canary) return deployAndRecord(r, req, artifact, { rollback: false, commit: r.meta.commit });
  const dreq: DeployRequest = canary ? { ...req, canary: { percent: canary.percent } } : req;
  try {
    return await deployAndRecord(r, dreq, artifact, {
      rollback: false,
      commit: r.meta.commit,
      verify: (started) =>
        verifyOnTarget({ target: r.target, dreq, setup: r.verify, started, project: r.project, environment: r.environment, version: r.version, log: r.log }),
    });
  } catch (e) {
    if (!(e instanceof VerificationFailedError)) throw e;
    r.log(`verification failed: ${e.message}`);
    if (e.onFailure === 'hold')
      throw new VerificationFailedError(
        `verification failed for ${e.message}; onFailure is hold: the new version stays deployed, ${r.environment.name} still records ${current?.entry.version ?? 'no release'} as current${current ? ` (rollback --env=${r.environment.name} or promote ${current.entry.version} restores it)` : ''}`,
        e,
      );
    if (!current)
      throw new VerificationFailedError(
        `verification failed for ${e.message}; nothing to roll back to (first release of ${r.project} in ${r.environment.name})`,
        e,
      );
    const prev = current.entry;
    const pr: PromoteRequest = { ...r, version: prev.version };
    r.log(`restoring ${prev.version} (seq ${prev.seq}) on ${r.target.describe(req)}`);
    let back: HistoryEntry;
    try {
      // the restore is part of the recorded failure path: a previous version that no longer verifies is a recorded failed rollback
      const prevArtifact = await locateArtifact(r.store, r.project, prev.version, r.environment).catch(async (le: unknown) => {
        if (isExpectedError(le)) await recordFailedRestore(pr, prev, le as Error);
        throw le;
      });
      const preq: DeployRequest = { ...req, version: prev.version, namespace: prevArtifact.namespace, stored: prevArtifact.stored };
      back = await deployAndRecord(pr, preq, prevArtifact, {
        rollback: true,
        commit: prev.commit,
        restore: prev.deploy ?? undefined,
        automatic: { reason: `verification failed: ${e.message}` },
      });
    } catch (re) {
      if (!isExpectedError(re) || re instanceof RecordFailedError) throw re;
      throw new VerificationFailedError(
        `verification failed for ${e.message}; ${r.version} is still running in ${r.environment.name}: restoring ${prev.version} failed too: ${((re as Error).message ?? String(re)).split('\n')[0]}; fix that, then run rollback --env=${r.environment.name} (or promote ${prev.version})`,
        e,
      );
    }
    throw new VerificationFailedError(`verification failed for ${e.message}; rolled back to ${prev.version} (seq ${back.seq})`, e);
  }
}

/**
 * The fields every history entry of one promotion shares, whatever its outcome: what was promoted where
 * (project, environment, version, artifact), by whom (commit, run id, actor, reason), and when it started.
 * @param o.startedAt ISO-8601 time the promotion started deploying; `automatic`: a restore after a failed check
 */
export function entryFields(
  r: PromoteRequest,
  artifact: VerifiedArtifact,
  o: { rollback: boolean; commit: string | null; startedAt: string; automatic?: { reason: string } },
) {
  return {
    project: r.project,
    environment: r.environment.name,
    version: r.version,
    rollback: o.rollback,
    artifact: artifactOf(artifact),
    commit: o.commit,
    runId: r.meta.runId,
    actor: r.meta.actor,
    ...(o.automatic ? { reason: o.automatic.reason, automatic: true } : r.meta.reason ? { reason: r.meta.reason } : {}),
    startedAt: o.startedAt,
  };
}
