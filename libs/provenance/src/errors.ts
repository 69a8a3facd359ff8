import { BuildonceError } from '@buildonce/errors';

/**
 * A provenance document, key or policy cannot be used: a malformed envelope or statement, an unusable
 * signing key (`BUILDONCE_SIGNING_KEY`), a key that is not ECDSA P-256, a KMS key that cannot sign.
 * The message is one line naming the thing and the fix.
 */
export class ProvenanceError extends BuildonceError {
  override name = 'ProvenanceError';
}

/** The rules a verification checks, in the order it checks them (named in refusals and in history entries). */
export const PROVENANCE_RULES = ['present', 'envelope', 'signature', 'statement', 'subject', 'builder', 'ref'] as const;
export type ProvenanceRule = (typeof PROVENANCE_RULES)[number];

/**
 * An environment's provenance policy refuses a version. `rule` names the failed rule; the message is
 * one line `provenance rule "<rule>" failed for <project>@<version> in <env>: <why>; <fix>`.
 */
export class ProvenanceRefusedError extends BuildonceError {
  override name = 'ProvenanceRefusedError';
  constructor(
    readonly rule: ProvenanceRule,
    message: string,
  ) {
    super(message);
  }
}
