import { spawn } from 'node:child_process';

/** Environment variable naming the crash point a child process should die at (see {@link crashPoint}). */
export const CRASH_AT_ENV = 'BUILDONCE_CRASH_AT';

/**
 * A hook point in a test child process: when `BUILDONCE_CRASH_AT` names this point, the process kills
 * itself with SIGKILL right here (no finally blocks, no exit handlers: like a lost machine or a
 * cancelled CI job). Call it from test wrappers around a store or deploy target, not from product code.
 */
export function crashPoint(name: string): void {
  if (process.env[CRASH_AT_ENV] === name) process.kill(process.pid, 'SIGKILL');
}

/** How a child process ended. */
export interface ChildOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a TypeScript (or JS) test script in a child node process (`node -r @swc-node/register`) with
 * `BUILDONCE_CRASH_AT=<point>` and waits for it to end (normally or killed at the point).
 * @param timeoutMs SIGKILL after this long (default 60 000 ms)
 */
export function runWithCrashPoint(
  script: string,
  args: string[],
  point: string | undefined,
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<ChildOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', '@swc-node/register', script, ...args], {
      cwd: opts.cwd,
      env: { ...(opts.env ?? process.env), [CRASH_AT_ENV]: point ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
