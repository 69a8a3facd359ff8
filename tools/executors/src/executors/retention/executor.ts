import type { ExecutorContext } from '@nx/devkit';
import { runRetentionCommand } from '../../cli/retention';
import { fail, projectFacts } from '../../lib/context';
import type { RetentionExecutorSchema } from './schema';

/** `retention` target: retention for this project only (see libs/release runRetention). */
export default async function retentionExecutor(options: RetentionExecutorSchema, context: ExecutorContext): Promise<{ success: boolean }> {
  try {
    const p = projectFacts(context);
    await runRetentionCommand({
      workspaceRoot: p.workspaceRoot,
      projects: [p.project],
      olderThanDays: options.olderThan ?? 30,
      keep: options.keep ?? 10,
      pr: options.pr || undefined,
      store: options.store || undefined,
      dryRun: !!options.dryRun,
      log: (l) => console.log(l),
    });
    return { success: true };
  } catch (e) {
    return fail(context.projectName, e, options.verbose);
  }
}
