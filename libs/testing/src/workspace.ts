import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
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

/** Directories of node_modules whose entries are relative links into the workspace or to sibling packages. */
const RELINKED = new Set(['@buildonce', '.bin']);

/**
 * Gives the temp workspace a node_modules of links: every installed package links to the repository's
 * copy (never `npm install` per test), but the workspace packages (`@buildonce/*`, relative links such as
 * `../../libs/artifact`) and `.bin` are re-created with the same relative targets, so they resolve to the
 * temp workspace's own sources: a library edited in the copy is what its executors bundle and run.
 */
function linkNodeModules(root: string): void {
  const from = join(repoRoot, 'node_modules');
  const to = join(root, 'node_modules');
  mkdirSync(to);
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    if (RELINKED.has(entry.name) && entry.isDirectory()) {
      mkdirSync(join(to, entry.name));
      for (const link of readdirSync(join(from, entry.name), { withFileTypes: true })) {
        const src = join(from, entry.name, link.name);
        if (link.isSymbolicLink() && !readlinkSync(src).startsWith('/')) symlinkSync(readlinkSync(src), join(to, entry.name, link.name));
        else symlinkSync(src, join(to, entry.name, link.name));
      }
    } else {
      symlinkSync(join(from, entry.name), join(to, entry.name));
    }
  }
}

/**
 * Copies the repository's tracked sources (not build outputs) into a fresh temp directory,
 * links the repo's installed packages into it (see linkNodeModules), and makes it a git
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
  linkNodeModules(root);
  const git = (...args: string[]) =>
    execFileSync('git', args, {
      cwd: root,
      stdio: 'pipe',
      env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' },
    });
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

/**
 * The environment of an `nx` run of the promote specs in a temp workspace: Rust builds from the offline
 * registry (BUILDONCE_CARGO_OFFLINE_REGISTRY, default Debian's /usr/share/cargo/registry), Nx's cache in
 * `cache`, no store, deploy or GITHUB_OUTPUT inherited from the machine; `env` last.
 */
export function promoteSpecEnv(cache: string, env: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    BUILDONCE_CARGO_OFFLINE_REGISTRY: process.env.BUILDONCE_CARGO_OFFLINE_REGISTRY ?? '/usr/share/cargo/registry',
    NX_CACHE_DIRECTORY: cache,
    BUILDONCE_STORE: '',
    BUILDONCE_DEPLOY: '',
    GITHUB_OUTPUT: '',
    ...env,
  };
}
