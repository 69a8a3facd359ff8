import pLimit from 'p-limit';

/** Thrown inside a task that never started because an earlier task failed (never seen by callers). */
const NOT_STARTED = Symbol('not started');

/**
 * Runs `task` for every item, at most `concurrency` at a time, and settles only when every started task has
 * settled. After a failure no further task starts; the ones in flight finish; then the first failure is thrown.
 * `Promise.all` would reject at the first failure while the other tasks keep writing, so the caller (and the
 * next command) could see a store still changing after the operation reported that it failed.
 * @param concurrency tasks in flight at most (at least 1)
 * @returns the tasks' results, in item order
 * @throws the first task failure, once every started task has settled
 */
export async function settleBounded<T, R>(items: readonly T[], concurrency: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const limit = pLimit(Math.max(1, concurrency));
  let failure: { error: unknown } | undefined;
  const settled = await Promise.allSettled(
    items.map((item, i) =>
      limit(async () => {
        if (failure) throw NOT_STARTED;
        try {
          return await task(item, i);
        } catch (e) {
          failure ??= { error: e };
          throw e;
        }
      }),
    ),
  );
  if (failure) throw failure.error;
  return settled.map((s) => (s as PromiseFulfilledResult<R>).value);
}
