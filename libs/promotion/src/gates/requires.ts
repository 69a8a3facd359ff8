import { PASS, type GateDecision } from './decision';
import { notSucceededUpstream, type UpstreamFacts } from './upstream';

/**
 * Gate `requires`: the version has a succeeded history entry in the required environment.
 * @returns refused when there is no entry, it is of another version, or it did not succeed
 */
export function requiresGate(f: UpstreamFacts): GateDecision {
  const e = f.entry;
  if (!e || e.status !== 'succeeded' || e.version !== f.version) return notSucceededUpstream(f);
  return PASS;
}
