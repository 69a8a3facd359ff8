import { afterAll, beforeAll } from 'vitest';
import { startFaultyMotoBucket, type FaultyMotoBucket } from './faulty-moto';
import type { FaultProxyOptions } from './fault-proxy';
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
  return useRunning(bucket, () => startMotoBucket(bucket));
}

/**
 * moto_server with one empty bucket behind a fault proxy, for the spec file or describe block that calls
 * this: started in its beforeAll ({@link startFaultyMotoBucket}: AWS_ENDPOINT_URL in `process.env` is the
 * proxy), stopped in its afterAll (`process.env` restored).
 * @param faults the proxy's options other than its target
 * @returns a getter of the running FaultyMotoBucket, for tests and later hooks
 * @throws (the getter) Error when called before the beforeAll has run or after the afterAll
 */
export function useFaultyMotoBucket(bucket: string, faults: Omit<FaultProxyOptions, 'target'> = {}): () => FaultyMotoBucket {
  return useRunning(bucket, () => startFaultyMotoBucket(bucket, faults));
}

/** Starts `start()` in beforeAll, stops it in afterAll; the getter throws while nothing runs. */
function useRunning<T extends { stop(): Promise<void> }>(bucket: string, start: () => Promise<T>): () => T {
  let running: T | undefined;
  beforeAll(async () => {
    running = await start();
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
