import type { DeployRequest } from '@buildonce/deploy';
import { locateArtifact } from './artifact';
import { RollbackError } from '@buildonce/errors';
import { changedTarget, readCurrent, readHistory, type HistoryEntry } from '@buildonce/ledger';
import { deployAndRecord, deployUnderLock, promotionInFlight, type PromoteRequest, type PromoteResult } from './promote';
import { checkProvenance } from './provenance';
import { deployRegions } from './regions';
import type { EnvironmentName } from '@buildonce/values';

/**
 * The rollback stack of an environment (pure): succeeded entries replayed oldest first, a promotion
 * pushes its version (unless it is already on top), a rollback to X pops back to X (or pushes X when
 * it is not on the stack). The top is the pointer's version; `rollback` goes to the one below it.
 * This is the one definition both {@link planRollback} and retention's protection use.
 * @param history entries in any order (failed ones are ignored)
 * @returns versions, bottom first
 */
export function rollbackStack(history: HistoryEntry[]): string[] {
  const ok = history.filter((e) => e.status === 'succeeded').sort((a, b) => a.seq - b.seq);
  const stack: string[] = [];
  for (const e of ok) {
    if (e.rollback) {
      const i = stack.lastIndexOf(e.version);
      if (i >= 0) stack.length = i + 1;
      else stack.push(e.version);
    } else if (stack[stack.length - 1] !== e.version) stack.push(e.version);
  }
  return stack;
}

/**
 * The entry whose deploy the target runs now (pure): the newest entry that changed the target
 * (`changedTarget`: `deploy` set, succeeded or not, or an interrupted promotion, which may have
 * deployed). A failed verification held (`onFailure: hold`), an unrestored one or an interruption
 * leaves its version (possibly) running while the pointer still names the last verified one.
 * @param history entries in any order
 */
export function deployedEntry(history: HistoryEntry[]): HistoryEntry | undefined {
  let best: HistoryEntry | undefined;
  for (const e of history) if (changedTarget(e) && (!best || e.seq > best.seq)) best = e;
  return best;
}

/**
 * Every version `rollback` (without `--to`) reaches when repeated `depth` times, plus what runs now
 * (pure): the pointer's version, the `depth` versions below it on {@link rollbackStack}, and the
 * version left running by a held or unrestored failed verification. Retention protects exactly these,
 * so it can never delete a version rollback would restore.
 */
export function rollbackReach(history: HistoryEntry[], depth: number): string[] {
  const stack = rollbackStack(history);
  const reach = stack.slice(Math.max(0, stack.length - depth - 1));
  const live = deployedEntry(history);
  if (live && !reach.includes(live.version)) reach.push(live.version);
  return reach;
}

/**
 * Chooses the rollback target from an environment's history (pure), on {@link rollbackStack}:
 * without `to` the target is the version below the top (so repeated rollbacks keep going back instead
 * of toggling), except when the target runs a version whose verification failed and was not restored
 * (held, or the restore failed): then it is the top, the pointer's last verified version. With `to`
 * it is the newest succeeded entry of that version.
 * @param history entries oldest first
 * @returns the entry to restore (its deploy result lets targets re-activate it cheaply)
 * @throws RollbackError (empty history, nothing earlier, `to` never succeeded there)
 */
export function planRollback(history: HistoryEntry[], env: EnvironmentName, to?: string): HistoryEntry {
  const ok = history.filter((e) => e.status === 'succeeded').sort((a, b) => a.seq - b.seq);
  if (!ok.length) throw new RollbackError(`${env} has no successful release to roll back from`);
  const newestOf = (v: string) => [...ok].reverse().find((e) => e.version === v)!;
  if (to !== undefined) {
    if (!ok.some((e) => e.version === to))
      throw new RollbackError(`version ${to} never succeeded in ${env}: pick one from its history (releases --env=${env})`);
    return newestOf(to);
  }
  const stack = rollbackStack(history);
  const top = stack[stack.length - 1]!;
  const live = deployedEntry(history);
  if (live && live.status === 'failed' && live.version !== top) return newestOf(top);
  const target = stack[stack.length - 2];
  if (!target) throw new RollbackError(`${env} has no earlier version to roll back to (only ${stack[0]} was ever released there)`);
  return newestOf(target);
}

export type RollbackRequest = Omit<PromoteRequest, 'version'> & {
  /** version to restore; default: the previous one (see planRollback) */
  to?: string;
};

/**
 * Rolls an environment back to the previous (or named) version from its own history: no build, no
 * upstream check. The artifact is re-verified in the store, the target re-activates it (Lambda: the
 * alias goes back to the already published function version when it still has the artifact's
 * CodeSha256), and the entry is recorded with `rollback: true` and the restored entry's commit.
 * @throws RollbackError, ProvenanceRefusedError, ArtifactNotFoundError/ArtifactIntegrityError, DeployPreflightError, DeployError, LockTimeoutError
 */
export async function rollbackEnvironment(r: RollbackRequest): Promise<PromoteResult> {
  const { store, project, environment: env, log } = r;
  const history = await readHistory(store, project, env.name);
  const target = planRollback(history, env.name, r.to);
  const current = await readCurrent(store, project, env.name);
  const live = deployedEntry(history);
  if (current?.entry.version === target.version && (!live || live.version === target.version) && !(await promotionInFlight(r))) {
    log(`version ${target.version} is already current in ${env.name} (seq ${current.entry.seq}): nothing to do`);
    return { status: 'already-current', entry: current.entry };
  }
  const version = target.version;
  const artifact = await locateArtifact(store, project, version, env);
  // an environment that requires provenance checks it on the way back too (keys or rules may have changed)
  artifact.provenance = await checkProvenance({ store, project, version, environment: env, artifact, log, kms: r.aws.kms });
  log(`rolling ${env.name} back from ${current?.entry.version ?? 'none'} to ${version} (seq ${target.seq}); verified ${artifact.uri}`);
  const pr: PromoteRequest = { ...r, version };
  const req: DeployRequest = { project, environment: env.name, version, namespace: artifact.namespace, stored: artifact.stored, store, dryRun: r.dryRun, log };
  return deployUnderLock(pr, req, artifact, {
    purpose: `rollback ${version}`,
    dryRun: (where) => `dry run: would restore ${version} on ${where} and record a rollback entry`,
    previousVersion: current?.entry.version ?? null,
    // every region is restored: the target entry's per-region deploys are re-activated where the target can
    deploy: (again, regions) =>
      regions
        ? deployRegions(pr, req, artifact, regions, { rollback: true, commit: target.commit, previous: again, restoreFrom: target })
        : deployAndRecord(pr, req, artifact, { rollback: true, commit: target.commit, restore: target.deploy ?? undefined }),
  });
}
