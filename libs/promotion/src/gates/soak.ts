import { PASS, type GateDecision } from './decision';
import type { UpstreamFacts } from './upstream';

/**
 * Gate `soak`: the version finished in the required environment at least the environment's
 * `soakMinutes` ago (minutes; 0 = no soak).
 */
export function soakGate(f: UpstreamFacts): GateDecision {
  const soakMinutes = f.environment.soakMinutes;
  if (!f.entry || soakMinutes <= 0) return PASS;
  const soakedMs = f.now.getTime() - Date.parse(f.entry.finishedAt);
  const needMs = soakMinutes * 60_000;
  if (soakedMs >= needMs) return PASS;
  const left = Math.ceil((needMs - soakedMs) / 60_000);
  return {
    ok: false,
    reason: `version ${f.version} reached ${f.required} at ${f.entry.finishedAt}; ${f.environment.name} needs ${soakMinutes} min of soak there, ${left} min left`,
  };
}
