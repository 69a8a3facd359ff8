import { defineConfig } from 'vitest/config';

/**
 * Shared vitest settings for every project: unit tests (`*.spec.ts`) and integration tests
 * (`*.int.spec.ts`, which start moto_server, run cargo or the nx CLI) run in one `vitest run`.
 * Integration tests get generous timeouts (ms) because a cold cargo build takes tens of seconds.
 */
export const sharedConfig = defineConfig({
  test: {
    include: ['src/**/*.spec.ts', 'test/**/*.spec.ts', 'deploy/**/*.spec.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    fileParallelism: false,
    reporters: ['default'],
  },
});
