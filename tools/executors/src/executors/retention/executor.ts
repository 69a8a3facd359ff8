import type { ExecutorContext } from '@nx/devkit';
import { ConfigError } from '@buildonce/errors';
import { checkRetentionNumbers, runRetentionCommand, type RetentionCommand } from '@buildonce/commands';
import { projectFacts, runExecutor, type ProjectFacts } from '../../lib/context';
import type { RetentionExecutorSchema } from './schema';

/**
 * Options Nx coerced from empty strings: Nx reads `--keep=` as 0, so the raw command line (`argv`) is
 * checked for `--keep=`, `--older-than=`, `--olderThan=`, `--pr=` with nothing after the `=`.
 * @throws ConfigError naming the option
 */
export function refuseEmptyOptions(argv: readonly string[]): void {
  for (const a of argv) {
    const m = /^--(keep|older-than|olderThan|pr)=\s*$/.exec(a);
    if (m) throw new ConfigError(`--${m[1]} is empty: give a whole number >= 1 (or leave the option out for its default)`);
  }
}

/** Options (validated and defaulted by Nx from schema.json) → libs/commands retention for this project only. @throws ConfigError for empty or out-of-range numbers */
export function normalizeOptions(o: RetentionExecutorSchema, p: ProjectFacts, log: (line: string) => void, argv: readonly string[] = []): RetentionCommand {
  refuseEmptyOptions(argv);
  const c: RetentionCommand = {
    workspaceRoot: p.workspaceRoot,
    projects: [p.project],
    olderThanDays: o.olderThan,
    keep: o.keep,
    pr: o.pr,
    store: o.store,
    dryRun: o.dryRun,
    log,
  };
  checkRetentionNumbers(c);
  return c;
}

/** `retention` target: retention for this project only (see libs/commands runRetention). */
export default async function retentionExecutor(options: RetentionExecutorSchema, context: ExecutorContext): Promise<{ success: boolean }> {
  return runExecutor(context, async () => {
    await runRetentionCommand(normalizeOptions(options, projectFacts(context), (l) => console.log(l), process.argv));
  });
}
