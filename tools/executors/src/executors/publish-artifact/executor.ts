import type { ExecutorContext } from '@nx/devkit';
import { runPublishCommand, type PublishCommand } from '@buildonce/release';
import { fail, projectFacts, type ProjectFacts } from '../../lib/context';
import { outputDirOf } from '../../lib/options';
import type { PublishArtifactExecutorSchema } from './schema';

/** Options (validated and defaulted by Nx from schema.json) → the libs/release publish command. */
export function normalizeOptions(o: PublishArtifactExecutorSchema, p: ProjectFacts, log: (line: string) => void): PublishCommand {
  return {
    project: p.project,
    workspaceRoot: p.workspaceRoot,
    outputDir: outputDirOf(p, o.outputPath),
    store: o.store,
    registry: o.registry,
    preview: o.preview,
    dryRun: o.dryRun,
    forcePathStyle: o.forcePathStyle || undefined,
    log,
  };
}

/** `publish` target: publishes the build output immutably (libs/release runPublishCommand; oci-image builds are pushed to their registry first). */
export default async function publishArtifactExecutor(options: PublishArtifactExecutorSchema, context: ExecutorContext): Promise<{ success: boolean }> {
  try {
    await runPublishCommand(normalizeOptions(options, projectFacts(context), (l) => console.log(l)));
    return { success: true };
  } catch (e) {
    return fail(context.projectName, e, context.isVerbose);
  }
}
