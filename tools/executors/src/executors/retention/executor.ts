import type { ExecutorContext } from '@nx/devkit';
import { runRetentionCommand, type RetentionCommand } from '@buildonce/release';
import { fail, projectFacts, type ProjectFacts } from '../../lib/context';
import type { RetentionExecutorSchema } from './schema';

/** Options (validated and defaulted by Nx from schema.json) → libs/release retention for this project only. */
export function normalizeOptions(o: RetentionExecutorSchema, p: ProjectFacts, log: (line: string) => void): RetentionCommand {
  return { workspaceRoot: p.workspaceRoot, projects: [p.project], olderThanDays: o.olderThan, keep: o.keep, pr: o.pr, store: o.store, dryRun: o.dryRun, log };
}

/** `retention` target: retention for this project only (see libs/release runRetention). */
export default async function retentionExecutor(options: RetentionExecutorSchema, context: ExecutorContext): Promise<{ success: boolean }> {
  try {
    await runRetentionCommand(normalizeOptions(options, projectFacts(context), (l) => console.log(l)));
    return { success: true };
  } catch (e) {
    return fail(context.projectName, e, context.isVerbose);
  }
}
