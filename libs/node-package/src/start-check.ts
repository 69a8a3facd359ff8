import { relative, sep } from 'node:path';
import { BuildonceError } from '@buildonce/errors';
import { run } from '@buildonce/process';

/** Options of {@link startCheck}. */
export interface StartCheckOptions {
  /** absolute directory holding the unpacked artifact (bundle, its package.json, artifact-info.json) */
  dir: string;
  /** file name of the bundled entry in `dir`, e.g. `main.js` */
  entry: string;
  /** absolute workspace root: paths in the failure line are relative to it */
  workspaceRoot: string;
  /** ms the import (module evaluation, top-level await included) may take; default 60000 (generous: a loaded CI machine loads a large bundle slowly; the timeout is for imports that never settle) */
  timeoutMs?: number;
  /** ms to wait after the import settled for errors thrown asynchronously (e.g. `listen` failing); default 250 */
  graceMs?: number;
}

/** The bundle could not be loaded: one line with what it threw, where, and how to opt out. */
export class StartCheckError extends BuildonceError {
  override name = 'StartCheckError';
}

/** Prefix of the line the runner prints for an exception (followed by the JSON-encoded stack). */
const MARK = 'BUILDONCE_START_CHECK_ERROR ';

/**
 * The child's program (`node -e`): imports the entry by file URL (Node's ESM loader loads CommonJS and ESM
 * alike), then exits 0 after `graceMs`; an exception during evaluation, an uncaught exception or an unhandled
 * rejection before that exits 1 printing its stack after {@link MARK}.
 */
const RUNNER = `
const [entry, grace] = process.argv.slice(1);
const fail = (e) => { process.stderr.write(${JSON.stringify(MARK)} + JSON.stringify(e && e.stack ? String(e.stack) : String(e)) + '\\n'); process.exit(1); };
process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);
import(require('node:url').pathToFileURL(entry).href).then(() => setTimeout(() => process.exit(0), Number(grace)).unref(), fail);
setInterval(() => {}, 1 << 30);
`;

const STOP_HINT = 'fix it, or set the build option "startCheck": false for an app that must not run at import';

/**
 * Loads a bundle the way an instance will, before it gets a version: `node --enable-source-maps` imports
 * `<dir>/<entry>` in a child process (cwd `dir`) with `PORT=0` (a free port, for apps that listen on
 * import), `HOST=127.0.0.1`, `BUILDONCE_START_CHECK=1` and no `NODE_OPTIONS`. The check passes when the
 * import settles within `timeoutMs` and nothing throws during the next `graceMs`; the child is then stopped
 * (servers never need to close). `node --check` is not enough: it parses, it does not resolve or run.
 * @returns how long the import took (ms, including Node's start-up)
 * @throws StartCheckError with one line: the error the import threw (source-mapped location), the exit
 *   code when the app exited by itself, or the timeout
 */
export async function startCheck(o: StartCheckOptions): Promise<{ ms: number }> {
  const timeoutMs = o.timeoutMs ?? 60_000;
  const graceMs = o.graceMs ?? 250;
  const env: Record<string, string | undefined> = { ...process.env, PORT: '0', HOST: '127.0.0.1', BUILDONCE_START_CHECK: '1', NODE_OPTIONS: undefined };
  const t0 = Date.now();
  const r = await run(process.execPath, ['--enable-source-maps', '-e', RUNNER, `${o.dir}${sep}${o.entry}`, String(graceMs)], {
    cwd: o.dir,
    env,
    reject: false,
    timeoutMs: timeoutMs + graceMs,
  }).catch((e: Error) => {
    if (/timed out/.test(e.message))
      throw new StartCheckError(`start check: importing ${o.entry} did not finish within ${timeoutMs} ms (top-level await that never settles?); ${STOP_HINT}`);
    throw e;
  });
  if (r.exitCode === 0) return { ms: Date.now() - t0 };
  const marked = r.stderr.split('\n').find((l) => l.startsWith(MARK));
  if (marked) {
    const stack = String(JSON.parse(marked.slice(MARK.length)));
    throw new StartCheckError(`start check: importing ${o.entry} threw ${describeStack(stack, o.workspaceRoot)}; ${STOP_HINT}`);
  }
  const last = r.stderr.trim().split('\n').filter(Boolean).slice(-1)[0] ?? '';
  throw new StartCheckError(`start check: ${o.entry} exited with code ${r.exitCode} while loading${last ? ` (${last.trim()})` : ''}; ${STOP_HINT}`);
}

/**
 * `Error: boom at apps/api/src/main.ts:3:7` from a (source-mapped) stack: its first line and its first frame
 * that is not Node's own, with absolute paths made relative to the workspace.
 */
export function describeStack(stack: string, workspaceRoot: string): string {
  const lines = stack.split('\n');
  const head = lines[0]!.trim();
  const frame = lines
    .slice(1)
    .map((l) => /\(?((?:file:\/\/)?\/[^()]+?:\d+:\d+)\)?\s*$/.exec(l.trim())?.[1])
    .find((f): f is string => !!f && !f.includes('node:internal'));
  if (!frame) return head;
  const path = frame.replace(/^file:\/\//, '');
  const rel = relative(workspaceRoot, path).split(sep).join('/');
  return `${head} at ${rel.startsWith('../') ? path : rel}`;
}
