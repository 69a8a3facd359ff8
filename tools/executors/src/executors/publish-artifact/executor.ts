import type { ExecutorContext } from '@nx/devkit';
import { withOutputLock } from '../../lib/output-lock';
import { runPublishCommand, type PublishCommand } from '@buildonce/commands';
import { batchExecutor, consoleOutput, type TaskOutput } from '../../lib/batch';
import { fail, projectFacts, type ProjectFacts } from '../../lib/context';
import { outputDirOf } from '../../lib/options';
import { checkRequestedEnvironments } from '../../lib/requested-environments';
import type { PublishArtifactExecutorSchema } from './schema';

/** Options (validated and defaulted by Nx from schema.json) → the libs/commands publish command. */
export function normalizeOptions(
  o: PublishArtifactExecutorSchema,
  p: ProjectFacts,
  log: (line: string) => void,
  buildOptions: Record<string, unknown> = {},
): PublishCommand {
  return {
    project: p.project,
    workspaceRoot: p.workspaceRoot,
    outputDir: outputDirOf(p, o.outputPath),
    store: o.store,
    registry: o.registry,
    preview: o.preview,
    dryRun: o.dryRun,
    forcePathStyle: o.forcePathStyle || undefined,
    // recorded in the signed provenance (BUILDONCE_SIGNING_KEY): the target that built the version and its options
    buildTarget: 'build',
    buildOptions,
    projectRoot: p.projectRoot,
    log,
  };
}

/** One publish task: its lines go to `out`; resolves to its success (failures are reported as lines, never thrown). */
async function publishTask(options: PublishArtifactExecutorSchema, context: ExecutorContext, out: TaskOutput): Promise<boolean> {
  try {
    const p = projectFacts(context);
    // a promote of this run to a misspelt environment fails here, before anything is uploaded
    await checkRequestedEnvironments(context, p.project, p.workspaceRoot);
    const c = normalizeOptions(options, p, out.log, context.projectsConfigurations?.projects[p.project]?.targets?.build?.options ?? {});
    // reads (and uploads) the build output: not while another task of this workspace rewrites it
    await withOutputLock(c.outputDir, `${p.project}:${context.targetName ?? 'publish'}`, out.log, () => runPublishCommand(c), { reader: true });
    return true;
  } catch (e) {
    fail(context.projectName, e, context.isVerbose, out.error);
    return false;
  }
}

/** `publish` target: publishes the build output immutably, signed when BUILDONCE_SIGNING_KEY is set (libs/commands runPublishCommand; oci-image builds are pushed to their registry first). */
export default async function publishArtifactExecutor(options: PublishArtifactExecutorSchema, context: ExecutorContext): Promise<{ success: boolean }> {
  return { success: await publishTask(options, context, consoleOutput) };
}

/**
 * Batch form (executors.json `batchImplementation`, `preferBatch`): `nx run-many -t publish` publishes every
 * project in one process, 4 at a time, instead of one Nx task process each; the same work per task.
 */
export const batch = batchExecutor(publishTask, 4);
