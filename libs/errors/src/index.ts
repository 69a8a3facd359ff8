/**
 * Expected failures and how failures are reported (the changesets `packages/errors` idea).
 *
 * An **expected** failure is one buildonce anticipates: bad input, a policy refusal, a conflict, a missing
 * artifact, an unreachable store. It is a {@link BuildonceError}; its message is ONE line that names the
 * thing and says what to do. Anything else (a `TypeError`, an unmapped SDK error) is a **bug**: it is
 * reported with its stack and the words "this is a bug".
 */

/** Base class of every expected failure. `message` is one line naming the thing and the fix. */
export class BuildonceError extends Error {
  override name = 'BuildonceError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * Configuration is malformed or inconsistent: buildonce.json, a store URL, a BUILDONCE_* variable, an
 * executor option, the cache server's environment. The message names the field and the fix.
 */
export class ConfigError extends BuildonceError {
  override name = 'ConfigError';
}

/** True for expected failures (instances of {@link BuildonceError}). */
export function isExpectedError(e: unknown): e is BuildonceError {
  return e instanceof BuildonceError;
}

/** What to print for a failure: `expected` → one line; `bug` → the message, the stack and a "this is a bug" line. */
export interface FailureReport {
  kind: 'expected' | 'bug';
  /** lines to print on stderr, in order (no trailing newlines) */
  lines: string[];
}

/**
 * Describes a failure for a human.
 * - expected ({@link BuildonceError}): one line, `<prefix><message>` (the message's first line only);
 *   with `verbose` the stack follows.
 * - anything else: `<prefix><name>: <message>`, the stack, and a line saying it is a bug in buildonce.
 * @param prefix prepended to the first line unless the message already starts with it (e.g. `[rust-scorer] `)
 */
export function describeFailure(e: unknown, opts: { prefix?: string; verbose?: boolean } = {}): FailureReport {
  const prefix = opts.prefix ?? '';
  const withPrefix = (msg: string) => (prefix && !msg.startsWith(prefix) ? prefix + msg : msg);
  if (isExpectedError(e)) {
    const first = (e.message.split('\n')[0] ?? '').trim() || e.name;
    const lines = [withPrefix(first)];
    if (opts.verbose && e.stack) lines.push(e.stack);
    return { kind: 'expected', lines };
  }
  const err = e instanceof Error ? e : undefined;
  const head = err ? `${err.name}: ${err.message}` : `non-Error thrown: ${safeString(e)}`;
  const lines = [withPrefix(head)];
  if (err?.stack) lines.push(err.stack);
  lines.push('this is a bug in buildonce (an unexpected error, not a problem with your input): please report it with the stack above');
  return { kind: 'bug', lines };
}

function safeString(v: unknown): string {
  try {
    return typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  } catch {
    return String(v);
  }
}

// ---------------------------------------------------------------------- the promotion layer's errors

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

/**
 * A failure the release layer records in the environment's history as a `failed` entry: `seq` is that entry's
 * (undefined until recorded, or when recording failed).
 */
export class RecordedFailureError extends ReleaseError {
  override name = 'RecordedFailureError';
  readonly seq?: number;
  constructor(message: string, o: { seq?: number; cause?: unknown } = {}) {
    super(message, { cause: o.cause });
    this.seq = o.seq;
  }
}

/**
 * A promotion (or rollback) to an environment with regions failed in at least one region: the regions
 * already moved were restored (`regionFailure: rollback`) or kept (`hold`, a partial release that
 * downstream environments refuse). The entry recording every region's result has `seq`.
 */
export class RegionFailureError extends RecordedFailureError {
  override name = 'RegionFailureError';
}
