import { describe, expect, it } from 'vitest';
import { settleBounded } from './bounded';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('settleBounded', () => {
  it('returns results in item order with at most `concurrency` tasks in flight', async () => {
    let inFlight = 0;
    let most = 0;
    const out = await settleBounded([5, 1, 4, 2, 3], 2, async (n) => {
      most = Math.max(most, ++inFlight);
      await sleep(n * 3);
      inFlight--;
      return n * 10;
    });
    expect(out).toEqual([50, 10, 40, 20, 30]);
    expect(most).toBe(2);
  });

  it('on a failure starts nothing more, waits for the tasks in flight, then throws the first failure', async () => {
    for (let seed = 0; seed < 20; seed++) {
      const started: number[] = [];
      const finished: number[] = [];
      const failAt = seed % 6;
      const slow = (seed * 7) % 6;
      const run = settleBounded([0, 1, 2, 3, 4, 5], 3, async (i) => {
        started.push(i);
        await sleep(i === slow ? 30 : 2);
        if (i === failAt) throw new Error(`task ${i} failed`);
        finished.push(i);
        return i;
      });
      await expect(run).rejects.toThrow(`task ${failAt} failed`);
      // nothing still running once the failure is reported
      const settledCount = finished.length + 1;
      await sleep(50);
      expect(finished.length + 1, `seed ${seed}`).toBe(settledCount);
      expect(started.length, `seed ${seed}`).toBe(settledCount);
    }
  });

  it('an empty list is an empty result', async () => {
    expect(await settleBounded([], 4, async () => 1)).toEqual([]);
  });
});
