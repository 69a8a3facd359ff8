import type { ResolvedEnvironment } from '@buildonce/config';
import type { HistoryEntry } from '@buildonce/ledger';
import type { Version } from '@buildonce/values';
import { UPSTREAM_GATES, type GateDecision } from './gates';

/** Result of the promotion policy: allowed, or refused with a one-line reason. */
export type PolicyDecision = GateDecision;

/**
 * The promotion policy (pure): a version may go to an environment when, for every required
 * (upstream) environment, every gate of {@link UPSTREAM_GATES} passes: it has a succeeded entry there
 * (`requires`) whose checks passed (`verification`), finished at least `soakMinutes` ago (`soak`).
 * Preview environments and chain heads have no requirements. The first refusal is the answer.
 * @param upstream newest succeeded entry of this version per required environment (undefined: never succeeded there)
 * @param now current time
 */
export function checkPolicy(env: ResolvedEnvironment, version: Version, upstream: Record<string, HistoryEntry | undefined>, now: Date): PolicyDecision {
  for (const required of env.requires) {
    const facts = { environment: env, version, required, entry: upstream[required], now };
    for (const gate of UPSTREAM_GATES) {
      const d = gate(facts);
      if (!d.ok) return d;
    }
  }
  return { ok: true };
}
