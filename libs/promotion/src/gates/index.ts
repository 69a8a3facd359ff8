import { provenanceGate } from './provenance';
import { requiresGate } from './requires';
import { soakGate } from './soak';
import { trustGate } from './trust';
import { verificationGate } from './verification';

export * from './decision';
export * from './upstream';
export * from './requires';
export * from './verification';
export * from './soak';
export * from './trust';
export * from './provenance';

/**
 * The gates evaluated per required (upstream) environment, in order; the first refusal is the answer
 * ({@link checkPolicy} in ../policy.ts runs them for each environment the target requires).
 */
export const UPSTREAM_GATES = [requiresGate, verificationGate, soakGate] as const;

/**
 * Every promotion gate in the order a promotion (and a rollback, which skips the upstream ones) meets
 * them. Each is a pure function of facts read before it runs; where its facts are read decides where it
 * runs: `trust` in locateArtifact (../artifact.ts, before any byte is verified), `provenance` in
 * checkProvenance (../provenance.ts, after the bytes are verified and the keys resolved), the upstream
 * gates in checkPolicy (../policy.ts, from the upstream history) — all before the lock and the deploy.
 */
export const GATES = [
  { name: 'trust', evaluate: trustGate },
  { name: 'provenance', evaluate: provenanceGate },
  { name: 'requires', evaluate: requiresGate },
  { name: 'verification', evaluate: verificationGate },
  { name: 'soak', evaluate: soakGate },
] as const;
