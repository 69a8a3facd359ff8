import type { ExecutorContext } from '@nx/devkit';
import { runRollbackCommand, type RollbackCommand } from '@buildonce/commands';
import { projectFacts, runExecutor, type ProjectFacts } from '../../lib/context';
import { deployCommandOptions, versionOption } from '../../lib/options';
import { rawOption } from '../../lib/raw-option';
import type { RollbackExecutorSchema } from './schema';

/** Options (validated and defaulted by Nx from schema.json) → the libs/commands rollback command. @throws ConfigError for a `--to` that lost digits */
export function normalizeOptions(o: RollbackExecutorSchema, p: ProjectFacts, log: (line: string) => void): RollbackCommand {
  return { ...deployCommandOptions(o, p, log), to: versionOption(o.to, 'to') };
}

/** `rollback` target (no dependsOn): restores the previous or `--to` version of `--env` from its history. */
export default async function rollbackExecutor(options: RollbackExecutorSchema, context: ExecutorContext): Promise<{ success: boolean }> {
  return runExecutor(context, async () => {
    // `--to=<20-digit version>` as typed: Nx's parser may already have turned it into an imprecise number
    const to = typeof options.to === 'number' ? (rawOption(context, 'to') ?? options.to) : options.to;
    await runRollbackCommand(normalizeOptions({ ...options, to }, projectFacts(context), (l) => console.log(l)));
  });
}
