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

export * from './promotion-errors';
