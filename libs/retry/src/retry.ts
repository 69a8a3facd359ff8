import pRetry, { AbortError } from 'p-retry';

/**
 * How often and how fast to retry. Delays grow exponentially: attempt n (1-based) waits
 * `min(minTimeout × factor^(n-1), maxTimeout)` ms before the next one.
 */
export interface Backoff {
  /** delay after the first failure, ms */
  minTimeout: number;
  /** growth per failure (default 2) */
  factor?: number;
  /** cap of one delay, ms (default no cap) */
  maxTimeout?: number;
  /**
   * spread of each delay, so concurrent writers do not retry in step: `none` (default) the delay as is,
   * `full` a uniform random part of it (0…delay), `half` between half and all of it, `double` between
   * all and twice it (p-retry's `randomize`)
   */
  jitter?: 'none' | 'full' | 'half' | 'double';
}

export interface RetryOptions extends Backoff {
  /** retries after the first attempt (attempts = retries + 1) */
  retries: number;
  /** which failures are worth another attempt (default: all); any other is thrown at once, unchanged */
  retryIf?: (error: Error) => boolean;
  /** called after every failed attempt that is retried or was the last one (not for failures `retryIf` refuses) */
  onFailedAttempt?: (error: Error, info: { attempt: number; retriesLeft: number }) => void;
}

/**
 * The delay before attempt `attempt + 1` after `attempt` failures (attempt ≥ 1), in ms, per {@link Backoff}.
 * Polling loops that decide themselves whether to go on (lock waits, lost compare-and-swap races) sleep this.
 */
export function backoffDelay(attempt: number, b: Backoff): number {
  const raw = Math.min(b.minTimeout * (b.factor ?? 2) ** Math.max(attempt - 1, 0), b.maxTimeout ?? Infinity);
  const jitter = b.jitter ?? 'none';
  if (jitter === 'full') return raw * Math.random();
  if (jitter === 'half') return raw * (0.5 + Math.random() / 2);
  if (jitter === 'double') return raw * (1 + Math.random());
  return raw;
}

/**
 * Runs `fn` until it resolves, retrying failures that `retryIf` accepts up to `retries` times with the
 * delays of {@link backoffDelay} (on p-retry: a maintained implementation of the attempt loop, its
 * counts and abort semantics, instead of a hand-written loop per caller).
 * @param fn receives the attempt number (1-based)
 * @returns what `fn` resolves to
 * @throws the first failure `retryIf` refuses, unchanged; after the last retry, the last attempt's failure
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, o: RetryOptions): Promise<T> {
  let last: Error | undefined;
  let refused: Error | undefined;
  try {
    return await pRetry(
      async (attempt) => {
        try {
          return await fn(attempt);
        } catch (e) {
          const err = e instanceof Error ? e : new Error(String(e));
          if (o.retryIf && !o.retryIf(err)) throw new AbortError((refused = err));
          last = err;
          throw err;
        }
      },
      {
        retries: o.retries,
        minTimeout: 0,
        maxTimeout: 0,
        factor: 1,
        onFailedAttempt: async (e) => {
          o.onFailedAttempt?.(e, { attempt: e.attemptNumber, retriesLeft: e.retriesLeft });
          // the delay is ours (jitter modes p-retry lacks); p-retry's own is zero
          if (e.retriesLeft > 0) await new Promise((r) => setTimeout(r, backoffDelay(e.attemptNumber, o)));
        },
      },
    );
  } catch (e) {
    // p-retry rethrows the most frequent failure; callers name the refused or the last one
    throw refused ?? last ?? e;
  }
}
