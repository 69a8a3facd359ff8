import { afterAll, beforeAll } from 'vitest';
import { startMotoBucket, type MotoBucket } from './moto';

/**
 * Vitest hooks around the moto helpers (import `@buildonce/testing/src/moto-hooks`; kept out of the package
 * index, which child processes outside vitest load too).
 */

/**
 * moto_server with one empty bucket for the spec file or describe block that calls this: started in its
 * beforeAll ({@link startMotoBucket}: moto's credentials and endpoint in `process.env`, the bucket created),
 * stopped in its afterAll (`process.env` restored).
 * @returns a getter of the running MotoBucket, for tests and later hooks
 * @throws (the getter) Error when called before the beforeAll has run or after the afterAll
 */
export function useMotoBucket(bucket: string): () => MotoBucket {
  let running: MotoBucket | undefined;
  beforeAll(async () => {
    running = await startMotoBucket(bucket);
  });
  afterAll(async () => {
    await running?.stop();
    running = undefined;
  });
  return () => {
    if (!running) throw new Error(`moto with bucket ${bucket} is not running: use it in tests and hooks, not while the file is collected`);
    return running;
  };
}
