import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The repository root (absolute path). */
export const repo = resolve(__dirname, '../../..');

/** Folders no check reads: dependencies, build and tool output. */
const SKIP = new Set(['node_modules', 'dist', 'target', '.nx', '.git', 'tmp']);

/**
 * Calls `found` with the absolute path of every file below `dir`, skipping dependency and output folders
 * (node_modules, dist, target, .nx, .git, tmp). Untracked files count: a check sees the working tree.
 * @throws fs errors (a missing `dir`)
 */
export function walk(dir: string, found: (file: string) => void): void {
  for (const name of readdirSync(dir)) {
    if (SKIP.has(name)) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, found);
    else found(p);
  }
}
