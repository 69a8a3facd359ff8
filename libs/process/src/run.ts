import { execa } from 'execa';
import { BuildonceError } from '@buildonce/errors';

/** Result of a finished process. */
export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Thrown when a process exits non-zero or cannot start; the message is one line with the command and the last stderr line. */
export class CommandFailedError extends BuildonceError {
  override name = 'CommandFailedError';
  constructor(
    readonly command: string,
    readonly exitCode: number | undefined,
    readonly stderr: string,
  ) {
    const last = stderr.trim().split('\n').filter(Boolean).slice(-1)[0] ?? '';
    super(`${command} failed${exitCode === undefined ? '' : ` (exit ${exitCode})`}${last ? `: ${last}` : ''}`);
  }
}

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** stream the child's stdout/stderr to ours (long builds) instead of capturing silently */
  inherit?: boolean;
  /** do not throw on non-zero exit */
  reject?: boolean;
  /** kill the process (SIGTERM) after this many ms; it then counts as failed */
  timeoutMs?: number;
}

/**
 * The one helper every process goes through: argument arrays, never shell strings (execa).
 * Output is always captured (and also streamed when `inherit`).
 * @throws CommandFailedError on non-zero exit (unless `reject: false`) or when the binary is missing
 */
export async function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const cmd = [file, ...args].join(' ');
  try {
    const r = await execa(file, args, {
      cwd: opts.cwd,
      env: opts.env,
      reject: false,
      stdin: 'ignore',
      stdout: opts.inherit ? ['pipe', 'inherit'] : 'pipe',
      stderr: opts.inherit ? ['pipe', 'inherit'] : 'pipe',
      stripFinalNewline: true,
      ...(opts.timeoutMs ? { timeout: opts.timeoutMs } : {}),
    });
    if (r.timedOut) throw new CommandFailedError(cmd, undefined, `timed out after ${opts.timeoutMs} ms`);
    const out = { exitCode: r.exitCode ?? 1, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
    if (r.failed && r.exitCode === undefined) throw new CommandFailedError(cmd, undefined, r.shortMessage ?? out.stderr);
    if (out.exitCode !== 0 && opts.reject !== false) throw new CommandFailedError(cmd, out.exitCode, out.stderr);
    return out;
  } catch (e) {
    if (e instanceof CommandFailedError) throw e;
    throw new CommandFailedError(cmd, undefined, (e as Error).message);
  }
}

/** True when `file args` runs and exits 0 (used to detect optional tools such as cargo-lambda). */
export async function succeeds(file: string, args: readonly string[], opts: RunOptions = {}): Promise<boolean> {
  try {
    return (await run(file, args, { ...opts, reject: false })).exitCode === 0;
  } catch {
    return false;
  }
}
