import { describe, expect, it } from 'vitest';
import { backoffDelay, retry } from './retry';

class Conflict extends Error {
  override name = 'Conflict';
}

describe('retry', () => {
  it('retries what retryIf accepts, retries + 1 attempts at most, and throws the last failure', async () => {
    let calls = 0;
    const failed: number[] = [];
    const err = await retry(
      async () => {
        calls++;
        throw new Conflict(`conflict ${calls}`);
      },
      { retries: 3, minTimeout: 1, retryIf: (e) => e instanceof Conflict, onFailedAttempt: (_e, i) => failed.push(i.retriesLeft) },
    ).catch((e: Error) => e);
    expect(calls).toBe(4);
    expect(failed).toEqual([3, 2, 1, 0]);
    expect((err as Error).message).toBe('conflict 4');
  });

  it('throws a failure retryIf refuses at once, unchanged, without calling onFailedAttempt', async () => {
    let calls = 0;
    let failedAttempts = 0;
    const boom = new Error('access denied');
    const err = await retry(
      async () => {
        calls++;
        if (calls === 1) throw new Conflict('first');
        throw boom;
      },
      { retries: 5, minTimeout: 1, retryIf: (e) => e instanceof Conflict, onFailedAttempt: () => void failedAttempts++ },
    ).catch((e: Error) => e);
    expect(err).toBe(boom);
    expect(calls).toBe(2);
    expect(failedAttempts).toBe(1);
  });

  it('resolves with the first success and passes the attempt number', async () => {
    const seen: number[] = [];
    const r = await retry(
      async (attempt) => {
        seen.push(attempt);
        if (attempt < 3) throw new Conflict('x');
        return 'done';
      },
      { retries: 6, minTimeout: 1 },
    );
    expect(r).toBe('done');
    expect(seen).toEqual([1, 2, 3]);
  });

  it('waits the backoff delays between attempts', async () => {
    const t0 = Date.now();
    await retry(
      async (attempt) => {
        if (attempt < 3) throw new Conflict('x');
      },
      { retries: 2, minTimeout: 40, factor: 2 },
    );
    expect(Date.now() - t0).toBeGreaterThanOrEqual(40 + 80 - 5);
  });
});

describe('backoffDelay', () => {
  it('grows by factor from minTimeout up to maxTimeout', () => {
    expect([1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, { minTimeout: 100, factor: 1.5, maxTimeout: 400 }))).toEqual([100, 150, 225, 337.5, 400, 400]);
    expect([1, 2, 3].map((a) => backoffDelay(a, { minTimeout: 50 }))).toEqual([50, 100, 200]);
  });
  it('spreads delays by the jitter mode', () => {
    for (let i = 0; i < 50; i++) {
      const full = backoffDelay(1, { minTimeout: 100, jitter: 'full' });
      const half = backoffDelay(1, { minTimeout: 100, jitter: 'half' });
      const double = backoffDelay(1, { minTimeout: 100, jitter: 'double' });
      expect(full).toBeGreaterThanOrEqual(0);
      expect(full).toBeLessThan(100);
      expect(half).toBeGreaterThanOrEqual(50);
      expect(half).toBeLessThanOrEqual(100);
      expect(double).toBeGreaterThanOrEqual(100);
      expect(double).toBeLessThan(200);
    }
  });
});
