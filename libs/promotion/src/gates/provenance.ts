import { ProvenanceRefusedError, verifyProvenance, type ProvenanceRecord, type VerifyProvenanceInput } from '@buildonce/provenance';

/**
 * Gate `provenance`: the version's signed provenance satisfies the environment's `provenance` policy,
 * rule by rule (the rules and their order are libs/provenance `verifyProvenance`'s, a pure function of
 * the envelope, the stored files and the resolved keys).
 * @returns passed with what the history entry records, or refused with the failed rule's one line and error
 */
export function provenanceGate(
  f: VerifyProvenanceInput,
): { ok: true; record: ProvenanceRecord } | { ok: false; reason: string; rule: string; error: ProvenanceRefusedError } {
  try {
    return { ok: true, record: verifyProvenance(f).record };
  } catch (e) {
    if (!(e instanceof ProvenanceRefusedError)) throw e;
    return { ok: false, reason: e.message, rule: e.rule, error: e };
  }
}
