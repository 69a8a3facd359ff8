import { cpSync, mkdtempSync, rmSync, symlinkSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';

/** Absolute path of the buildonce repository root (where `nx.json` lives). */
export const repoRoot = resolve(__dirname, '../../..');

/** Paths never copied into a temp workspace (build outputs, caches, the store). */
const SKIP = new Set(['node_modules', 'dist', 'target', '.nx', '.buildonce', '.git', 'coverage', 'tmp']);

export interface TempWorkspace {
  /** Absolute path of the temp git workspace. */
  root: string;
  /** Runs a command in the workspace (argument array, no shell); returns stdout. Throws on non-zero exit. */
  run(cmd: string, args: string[], env?: Record<string, string | undefined>): string;
  /** Like run, but never throws: exit status and both outputs (for commands expected to fail). */
  runResult(cmd: string, args: string[], env?: Record<string, string | undefined>): { status: number; stdout: string; stderr: string };
  /** Removes the workspace directory. */
  dispose(): void;
}

/**
 * Copies the repository's tracked sources (not build outputs) into a fresh temp directory,
 * symlinks the repo's `node_modules` into it (never `npm install` per test), and makes it a git
 * repository with one commit so `nx affected` works.
 * @param prefix directory name prefix under the OS temp dir
 */
export function makeTempWorkspace(prefix = 'buildonce-ws-'): TempWorkspace {
  const root = mkdtempSync(join(tmpdir(), prefix));
  cpSync(repoRoot, root, {
    recursive: true,
    filter: (src) => {
      const rel = src.slice(repoRoot.length + 1);
      if (!rel) return true;
      const top = rel.split('/')[0];
      if (SKIP.has(top)) return false;
      return !rel.split('/').some((part) => part === 'target' || part === 'node_modules' || part === 'dist');
    },
  });
  symlinkSync(join(repoRoot, 'node_modules'), join(root, 'node_modules'), 'dir');
  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd: root, stdio: 'pipe', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' } });
  git('init', '-q', '-b', 'main');
  git('add', '-A');
  git('commit', '-q', '-m', 'init', '--no-verify');
  return {
    root,
    run(cmd, args, env = {}) {
      return execFileSync(cmd, args, {
        cwd: root,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_TUI: 'false', FORCE_COLOR: '0', NX_SKIP_NX_CACHE: undefined, ...env },
        maxBuffer: 64 * 1024 * 1024,
      });
    },
    runResult(cmd, args, env = {}) {
      const r = spawnSync(cmd, args, {
        cwd: root,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_TUI: 'false', FORCE_COLOR: '0', NX_SKIP_NX_CACHE: undefined, ...env },
        maxBuffer: 64 * 1024 * 1024,
      });
      return { status: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    },
    dispose() {
      if (existsSync(root)) rmSync(root, { recursive: true, force: true });
    },
  };
}
