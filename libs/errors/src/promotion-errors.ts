import { BuildonceError } from './index';

/**
 * Typed errors of the promotion layer (configuration, ledger, promotion, rollback, retention): expected failures (BuildonceError), each message one line that names
 * the problem and the fix. Configuration errors are @buildonce/errors ConfigError; a failed deploy is
 * @buildonce/deploy DeployError (with the history seq it was recorded under).
 */

/** Base class: anything the release layer refuses or fails on. */
export class ReleaseError extends BuildonceError {
  override name = 'ReleaseError';
}

/** A well-formed environment name that buildonce.json does not define (and is not a preview `pr-<n>`). */
export class UnknownEnvironmentError extends ReleaseError {
  override name = 'UnknownEnvironmentError';
}

/** The promotion policy refuses this version for this environment (upstream, soak time). */
export class PolicyError extends ReleaseError {
  override name = 'PolicyError';
}

/** A chain environment was asked to run an artifact that only exists in the preview namespace or was published by an untrusted builder. */
export class UntrustedArtifactError extends ReleaseError {
  override name = 'UntrustedArtifactError';
}

/** A ledger object is unreadable or inconsistent, or the ledger could not be updated after many retries. */
export class LedgerError extends ReleaseError {
  override name = 'LedgerError';
}

/** Another promotion of the same project and environment held the lock for longer than we were willing to wait. */
export class LockTimeoutError extends ReleaseError {
  override name = 'LockTimeoutError';
}

/** Rollback has no target: empty history, no earlier version, or `--to` names a version that never succeeded there. */
export class RollbackError extends ReleaseError {
  override name = 'RollbackError';
}

/**
 * The deploy succeeded but its history entry could not be written (store unavailable). The promotion
 * lock is left to expire so the next promotion records this one as interrupted (invariant 5).
 */
export class RecordFailedError extends ReleaseError {
  override name = 'RecordFailedError';
}
