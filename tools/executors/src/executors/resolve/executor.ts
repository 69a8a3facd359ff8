import type { ExecutorContext } from '@nx/devkit';
import { runResolveCommand, type ResolveCommand } from '@buildonce/commands';
import { fail, projectFacts, type ProjectFacts } from '../../lib/context';
import { machinePrinter } from '../../lib/output';
import type { ResolveExecutorSchema } from './schema';
import { parseEnvironmentName } from '@buildonce/values';

/** Options (validated by Nx from schema.json) → the libs/commands resolve command; logs go to stderr, the URI to stdout. */
export function normalizeOptions(o: ResolveExecutorSchema, p: ProjectFacts): ResolveCommand {
  return {
    project: p.project,
    workspaceRoot: p.workspaceRoot,
    env: parseEnvironmentName(o.env, '--env'),
    store: o.store,
    ...(o.region ? { region: o.region } : {}),
    log: (l) => console.error(l),
    print: machinePrinter(p.workspaceRoot, o.outputFile),
  };
}

/** `resolve` target: prints the artifact URI current in `--env` and writes it to `$GITHUB_OUTPUT`. */
export default async function resolveExecutor(options: ResolveExecutorSchema, context: ExecutorContext): Promise<{ success: boolean }> {
  try {
    await runResolveCommand(normalizeOptions(options, projectFacts(context)));
    return { success: true };
  } catch (e) {
    return fail(context.projectName, e, context.isVerbose);
  }
}
