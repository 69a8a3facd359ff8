import type { ExecutorContext } from '@nx/devkit';
import { runRollbackCommand } from '@buildonce/release';
import { deployOptions, envOption, versionOption } from '../promote/options';
import { fail, projectFacts } from '../../lib/context';
import type { RollbackExecutorSchema } from './schema';

/** `rollback` target (no dependsOn): restores the previous or `--to` version of `--env` from its history. */
export default async function rollbackExecutor(options: RollbackExecutorSchema, context: ExecutorContext): Promise<{ success: boolean }> {
  try {
    const p = projectFacts(context);
    await runRollbackCommand({
      project: p.project,
      workspaceRoot: p.workspaceRoot,
      env: envOption(options.env),
      to: versionOption(options.to, 'to'),
      deploy: deployOptions(options),
      store: options.store || undefined,
      dryRun: options.dryRun,
      log: (l) => console.log(l),
    });
    return { success: true };
  } catch (e) {
    return fail(context.projectName, e, options.verbose);
  }
}
