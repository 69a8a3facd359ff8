import type { ExecutorContext } from '@nx/devkit';
import { runResolveCommand } from '@buildonce/release';
import { envOption } from '../promote/options';
import { fail, projectFacts } from '../../lib/context';
import { machinePrinter } from '../../lib/output';
import type { ResolveExecutorSchema } from './schema';

/** `resolve` target: prints the artifact URI current in `--env` and writes it to `$GITHUB_OUTPUT`. */
export default async function resolveExecutor(options: ResolveExecutorSchema, context: ExecutorContext): Promise<{ success: boolean }> {
  try {
    const p = projectFacts(context);
    await runResolveCommand({
      project: p.project,
      workspaceRoot: p.workspaceRoot,
      env: envOption(options.env),
      store: options.store || undefined,
      log: (l) => console.error(l),
      print: machinePrinter(p.workspaceRoot, options.outputFile || undefined),
    });
    return { success: true };
  } catch (e) {
    return fail(context.projectName, e, options.verbose);
  }
}
