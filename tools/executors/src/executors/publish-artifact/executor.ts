import type { ExecutorContext } from '@nx/devkit';
import { readBuildManifest } from '@buildonce/artifact';
import { loadConfig } from '@buildonce/release';
import { publishBuild } from '@buildonce/store';
import { publishImageBuild } from '@buildonce/image';
import { fail, fromWorkspace, projectFacts } from '../../lib/context';
import type { PublishArtifactExecutorSchema } from './schema';

/**
 * `publish` target: publishes the build output immutably (libs/store publishBuild); an `oci-image`
 * build is pushed to its registry first and then recorded in the store (libs/image publishImageBuild).
 */
export default async function publishArtifactExecutor(options: PublishArtifactExecutorSchema, context: ExecutorContext): Promise<{ success: boolean }> {
  try {
    const p = projectFacts(context);
    // same store as promotion: --store, else BUILDONCE_STORE, else buildonce.json `store`, else the embedded store
    const store = options.store || (await loadConfig(p.workspaceRoot)).store;
    const outputDir = options.outputPath ? fromWorkspace(p.workspaceRoot, options.outputPath) : p.defaultOutputDir;
    const common = { project: p.project, workspaceRoot: p.workspaceRoot, outputDir, store: store || undefined, preview: options.preview, dryRun: options.dryRun, log: (l: string) => console.log(l) };
    const manifest = await readBuildManifest(outputDir, p.project);
    if (manifest.kind === 'oci-image') await publishImageBuild({ ...common, registry: options.registry || undefined });
    else await publishBuild({ ...common, forcePathStyle: options.forcePathStyle || undefined });
    return { success: true };
  } catch (e) {
    return fail(context.projectName, e, options.verbose);
  }
}
