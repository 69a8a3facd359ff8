import type { ExecutorContext } from '@nx/devkit';
import { buildImageTarget } from '@buildonce/image';
import { fail, fromWorkspace, projectFacts } from '../../lib/context';
import type { OciImageExecutorSchema } from './schema';

/**
 * `build` target of image deployables: assembles the OCI image (libs/image buildImageTarget).
 * The version is `NX_TASK_HASH`; running outside Nx is an error.
 */
export default async function ociImageExecutor(options: OciImageExecutorSchema, context: ExecutorContext): Promise<{ success: boolean }> {
  try {
    const p = projectFacts(context);
    const version = process.env.NX_TASK_HASH;
    if (!version) throw new Error('NX_TASK_HASH is not set: run this through nx (nx run <project>:build), the task hash is the artifact version');
    await buildImageTarget({
      project: p.project,
      version,
      workspaceRoot: p.workspaceRoot,
      outputDir: options.outputPath ? fromWorkspace(p.workspaceRoot, options.outputPath) : p.defaultOutputDir,
      baseImage: options.baseImage,
      platform: options.platform ?? 'linux/amd64',
      files: options.files,
      entrypoint: options.entrypoint,
      cmd: options.cmd,
      env: options.env,
      workingDir: options.workingDir,
      labels: options.labels,
      runtime: options.runtime || 'provided.al2023',
      handler: options.handler || options.cmd?.[0],
      cacheDir: options.cacheDir ? fromWorkspace(p.workspaceRoot, options.cacheDir) : undefined,
      log: (l) => console.log(l),
    });
    return { success: true };
  } catch (e) {
    return fail(context.projectName, e, options.verbose);
  }
}
