import type { ExecutorContext } from '@nx/devkit';
import { loadConfig } from '@buildonce/release';
import { publishBuild } from '@buildonce/store';
import { fail, fromWorkspace, projectFacts } from '../../lib/context';
import type { PublishArtifactExecutorSchema } from './schema';

/** `publish` target: publishes the build output immutably, signed when BUILDONCE_SIGNING_KEY is set (libs/store publishBuild). */
export default async function publishArtifactExecutor(options: PublishArtifactExecutorSchema, context: ExecutorContext): Promise<{ success: boolean }> {
  try {
    const p = projectFacts(context);
    // same store as promotion: --store, else BUILDONCE_STORE, else buildonce.json `store`, else the embedded store
    const store = options.store || (await loadConfig(p.workspaceRoot)).store;
    await publishBuild({
      project: p.project,
      workspaceRoot: p.workspaceRoot,
      outputDir: options.outputPath ? fromWorkspace(p.workspaceRoot, options.outputPath) : p.defaultOutputDir,
      store: store || undefined,
      preview: options.preview,
      dryRun: options.dryRun,
      forcePathStyle: options.forcePathStyle || undefined,
      // recorded in the signed provenance (BUILDONCE_SIGNING_KEY): the target that built the version and its options
      buildTarget: 'build',
      buildOptions: context.projectsConfigurations?.projects[p.project]?.targets?.build?.options ?? {},
      projectRoot: p.projectRoot,
      log: (l) => console.log(l),
    });
    return { success: true };
  } catch (e) {
    return fail(context.projectName, e, options.verbose);
  }
}
