import type { ExecutorContext } from '@nx/devkit';
import { withOutputLock } from '../../lib/output-lock';
import { runPromoteCommand, type PromoteCommand } from '@buildonce/commands';
import { projectFacts, runExecutor, type ProjectFacts } from '../../lib/context';
import { deployCommandOptions, outputDirOf } from '../../lib/options';
import type { PromoteExecutorSchema } from './schema';

/** Options (validated and defaulted by Nx from schema.json) → the libs/commands promote command. */
export function normalizeOptions(o: PromoteExecutorSchema, p: ProjectFacts, log: (line: string) => void): PromoteCommand {
  return { ...deployCommandOptions(o, p, log), outputDir: outputDirOf(p, o.outputPath) };
}

/**
 * `promote` target: reads the version from the build manifest and promotes it to `--env`
 * (libs/commands runPromoteCommand). Same version already current → success, no-op.
 */
export default async function promoteExecutor(options: PromoteExecutorSchema, context: ExecutorContext): Promise<{ success: boolean }> {
  return runExecutor(context, async () => {
    const c = normalizeOptions(options, projectFacts(context), (l) => console.log(l));
    // two promotes of one project in one workspace take turns (the second says what it waits for), and
    // none reads the build output while another task of this workspace rewrites it
    await withOutputLock(c.outputDir, `${c.project}:${context.targetName ?? 'promote'}`, c.log, () => runPromoteCommand(c), { reader: true });
  });
}
