import type { ExecutorContext } from '@nx/devkit';
import { runPromoteCommand } from '@buildonce/release';
import { deployOptions, envOption } from './options';
import { fail, fromWorkspace, projectFacts } from '../../lib/context';
import type { PromoteExecutorSchema } from './schema';

/**
 * `promote` target (`dependsOn: ["build"]`): reads the version from the build manifest and promotes
 * it to `--env` (libs/release runPromoteCommand). Same version already current → success, no-op.
 */
export default async function promoteExecutor(options: PromoteExecutorSchema, context: ExecutorContext): Promise<{ success: boolean }> {
  try {
    const p = projectFacts(context);
    await runPromoteCommand({
      project: p.project,
      workspaceRoot: p.workspaceRoot,
      env: envOption(options.env),
      outputDir: options.outputPath ? fromWorkspace(p.workspaceRoot, options.outputPath) : p.defaultOutputDir,
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
