import type { HistoryEntry } from '@buildonce/ledger';
import { PASS, type GateDecision } from './decision';
import { notSucceededUpstream, type UpstreamFacts } from './upstream';

/**
 * Whether an entry counts as a success for downstream environments: status `succeeded` and, when
 * the entry records a verification, a passed one (entries without `verification` come from
 * environments without checks, or predate verification).
 */
export function isVerifiedSuccess(e: HistoryEntry): boolean {
  return e.status === 'succeeded' && e.verification?.passed !== false;
}

/**
 * Gate `verification`: the upstream success passed the checks that ran after its deploy (when any ran).
 * A success whose checks failed (held, `onFailure: hold`) does not count.
 */
export function verificationGate(f: UpstreamFacts): GateDecision {
  if (!f.entry || !isVerifiedSuccess(f.entry)) return notSucceededUpstream(f);
  return PASS;
}
