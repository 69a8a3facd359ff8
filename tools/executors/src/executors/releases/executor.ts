import type { ExecutorContext } from '@nx/devkit';
import { runReleasesCommand } from '@buildonce/release';
import { fail, projectFacts } from '../../lib/context';
import { machinePrinter } from '../../lib/output';
import type { ReleasesExecutorSchema } from './schema';

/** `releases` target: prints the release table (cli-table3), `--json`, `--markdown`, or one `--field`. */
export default async function releasesExecutor(options: ReleasesExecutorSchema, context: ExecutorContext): Promise<{ success: boolean }> {
  try {
    const p = projectFacts(context);
    await runReleasesCommand({
      project: p.project,
      workspaceRoot: p.workspaceRoot,
      env: options.env ? String(options.env) : undefined,
      format: options.json ? 'json' : options.markdown ? 'markdown' : 'table',
      field: options.field || undefined,
      limit: options.limit,
      store: options.store || undefined,
      log: (l) => console.error(l),
      print: machinePrinter(p.workspaceRoot, options.outputFile || undefined),
    });
    return { success: true };
  } catch (e) {
    return fail(context.projectName, e, options.verbose);
  }
}
