import type { ResolvedEnvironment } from '@buildonce/config';
import type { HistoryEntry } from '@buildonce/ledger';
import type { Version } from '@buildonce/values';

/** Result of the promotion policy: allowed, or refused with a one-line reason. */
export type PolicyDecision = { ok: true } | { ok: false; reason: string };

/**
 * Whether an entry counts as a success for downstream environments: status `succeeded` and, when
 * the entry records a verification, a passed one (entries without `verification` come from
 * environments without checks, or predate verification).
 */
export function isVerifiedSuccess(e: HistoryEntry): boolean {
  return e.status === 'succeeded' && e.verification?.passed !== false;
}

/**
 * The promotion policy (pure): a version may go to an environment when, for every required
 * (upstream) environment, it has a verified succeeded history entry there ({@link isVerifiedSuccess}),
 * finished at least `soakMinutes` ago. Preview environments and chain heads have no requirements.
 * @param upstream newest succeeded entry of this version per required environment (undefined: never succeeded there)
 * @param now current time
 */
export function checkPolicy(env: ResolvedEnvironment, version: Version, upstream: Record<string, HistoryEntry | undefined>, now: Date): PolicyDecision {
  for (const req of env.requires) {
    const e = upstream[req];
    if (!e || !isVerifiedSuccess(e) || e.version !== version) {
      return { ok: false, reason: `version ${version} has not succeeded in ${req}, which ${env.name} requires: promote it to ${req} first (--env=${req})` };
    }
    if (env.soakMinutes > 0) {
      const soakedMs = now.getTime() - Date.parse(e.finishedAt);
      const needMs = env.soakMinutes * 60_000;
      if (soakedMs < needMs) {
        const left = Math.ceil((needMs - soakedMs) / 60_000);
        return {
          ok: false,
          reason: `version ${version} reached ${req} at ${e.finishedAt}; ${env.name} needs ${env.soakMinutes} min of soak there, ${left} min left`,
        };
      }
    }
  }
  return { ok: true };
}
