import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync, utimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CachedWorkspace } from '@buildonce/testing';

/** Runs the real nx CLI in a temp workspace with its own cache directory (never the shared one). */
export function nx(ws: CachedWorkspace, args: string[], env: Record<string, string | undefined> = {}) {
  return ws.runResult('npx', ['nx', ...args, '--output-style=stream'], { NX_CACHE_DIRECTORY: ws.cache, BUILDONCE_STORE: undefined, ...env });
}

/** Sets every file's and directory's mtime under `dir` (skipping node_modules and .git). */
export function touchAll(dir: string, when: Date): void {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === '.git') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) touchAll(p, when);
    utimesSync(p, when, when);
  }
}

/** Directories from `dir` up to `/` that contain a node_modules entry (should be none for a boot test). */
export function nodeModulesAbove(dir: string): string[] {
  const found: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, 'node_modules'))) found.push(join(d, 'node_modules'));
    if (dirname(d) === d) return found;
  }
}

/** A child process with its output collected. */
export interface Collected {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

export function spawnCollect(cmd: string, args: string[], opts: { cwd?: string; env: NodeJS.ProcessEnv }): Collected {
  const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

/**
 * Polls `GET <url>` until it answers 200 (or the process exits / `timeoutMs` passes).
 * @returns the parsed JSON body and the ms it took
 * @throws Error with the process output when it never answers
 */
export async function waitForHealth(url: string, proc: Collected, timeoutMs = 20_000): Promise<{ body: Record<string, unknown>; ms: number }> {
  const t0 = Date.now();
  let exited = false;
  void proc.exited.then(() => (exited = true));
  for (;;) {
    try {
      const res = await fetch(url);
      if (res.status === 200) return { body: (await res.json()) as Record<string, unknown>, ms: Date.now() - t0 };
    } catch {
      // not listening yet
    }
    if (exited || Date.now() - t0 > timeoutMs) {
      throw new Error(`no 200 from ${url} (${exited ? 'process exited' : 'timeout'}):\n${proc.stdout()}\n${proc.stderr()}`);
    }
    await sleep(50);
  }
}

/** SIGTERM and wait (SIGKILL after 5 s). @returns the exit code */
export async function stop(proc: Collected): Promise<number | null> {
  if (proc.child.exitCode !== null) return proc.child.exitCode;
  proc.child.kill('SIGTERM');
  const t = setTimeout(() => proc.child.kill('SIGKILL'), 5_000);
  const code = await proc.exited;
  clearTimeout(t);
  return code;
}
