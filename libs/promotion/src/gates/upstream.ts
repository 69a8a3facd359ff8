import type { ResolvedEnvironment } from '@buildonce/config';
import type { HistoryEntry } from '@buildonce/ledger';
import type { Version } from '@buildonce/values';

/** What the gates on one required (upstream) environment decide on. */
export interface UpstreamFacts {
  /** the environment promoted to */
  environment: ResolvedEnvironment;
  version: Version;
  /** one environment `environment` requires */
  required: string;
  /** the newest verified succeeded entry of `version` in `required` (undefined: none) */
  entry: HistoryEntry | undefined;
  now: Date;
}

/** The refusal every upstream gate gives when the version has not (verifiably) succeeded upstream. */
export function notSucceededUpstream(f: UpstreamFacts): { ok: false; reason: string } {
  return {
    ok: false,
    reason: `version ${f.version} has not succeeded in ${f.required}, which ${f.environment.name} requires: promote it to ${f.required} first (--env=${f.required})`,
  };
}
