import type { ExecutorContext } from '@nx/devkit';
import { runResolveCommand, type ResolveCommand } from '@buildonce/commands';
import { projectFacts, runExecutor, type ProjectFacts } from '../../lib/context';
import { printingCommandOptions } from '../../lib/options';
import type { ResolveExecutorSchema } from './schema';
import { parseEnvironmentName } from '@buildonce/values';

/** Options (validated by Nx from schema.json) → the libs/commands resolve command; logs go to stderr, the URI to stdout. */
export function normalizeOptions(o: ResolveExecutorSchema, p: ProjectFacts): ResolveCommand {
  return { ...printingCommandOptions(o, p), env: parseEnvironmentName(o.env, '--env'), ...(o.region ? { region: o.region } : {}) };
}

/** `resolve` target: prints the artifact URI current in `--env` and writes it to `$GITHUB_OUTPUT`. */
export default async function resolveExecutor(options: ResolveExecutorSchema, context: ExecutorContext): Promise<{ success: boolean }> {
  return runExecutor(context, async () => {
    await runResolveCommand(normalizeOptions(options, projectFacts(context)));
  });
}
