import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dirs = new Set<string>();

/**
 * A fresh directory under the OS temp dir, removed by {@link removeTempDirs} (register it once per spec
 * file: `afterAll(removeTempDirs)`).
 * @param prefix directory name prefix, e.g. `ledger-`
 * @returns the absolute path
 */
export function tempDir(prefix = 'buildonce-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(dir);
  return dir;
}

/** Removes every directory {@link tempDir} made in this process (missing ones are ignored). */
export function removeTempDirs(): void {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}
