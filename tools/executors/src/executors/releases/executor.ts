import type { ExecutorContext } from '@nx/devkit';
import { runReleasesCommand, type ReleasesCommand } from '@buildonce/commands';
import { projectFacts, runExecutor, type ProjectFacts } from '../../lib/context';
import { printingCommandOptions } from '../../lib/options';
import type { ReleasesExecutorSchema } from './schema';
import { parseEnvironmentName } from '@buildonce/values';

/** Options (validated and defaulted by Nx from schema.json) → the libs/commands releases command; logs on stderr, output on stdout. */
export function normalizeOptions(o: ReleasesExecutorSchema, p: ProjectFacts): ReleasesCommand {
  return {
    ...printingCommandOptions(o, p),
    env: o.env === undefined ? undefined : parseEnvironmentName(o.env, '--env'),
    format: o.json ? 'json' : o.markdown ? 'markdown' : 'table',
    field: o.field,
    limit: o.limit,
  };
}

/** `releases` target: prints the release table (cli-table3), `--json`, `--markdown`, or one `--field`. */
export default async function releasesExecutor(options: ReleasesExecutorSchema, context: ExecutorContext): Promise<{ success: boolean }> {
  return runExecutor(context, async () => {
    await runReleasesCommand(normalizeOptions(options, projectFacts(context)));
  });
}
