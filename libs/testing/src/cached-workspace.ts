import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTempWorkspace, type TempWorkspace } from './workspace';

/** A temp workspace ({@link makeTempWorkspace}) with an Nx cache directory of its own. */
export interface CachedWorkspace extends TempWorkspace {
  /** absolute path of its Nx cache directory (for NX_CACHE_DIRECTORY: never the machine's shared cache) */
  cache: string;
  /** removes the workspace and its cache directory */
  dispose(): void;
}

/**
 * {@link makeTempWorkspace} plus a fresh Nx cache directory under the OS temp dir, both removed by `dispose`.
 * @param prefix directory name prefix of the workspace; the cache directory's is `nxcache-<prefix>`
 */
export function makeCachedWorkspace(prefix: string): CachedWorkspace {
  const ws = makeTempWorkspace(prefix);
  const cache = mkdtempSync(join(tmpdir(), `nxcache-${prefix}`));
  return {
    ...ws,
    cache,
    dispose() {
      ws.dispose();
      rmSync(cache, { recursive: true, force: true });
    },
  };
}
