import type { ExecutorContext } from '@nx/devkit';
import { withOutputLock } from '../../lib/output-lock';
import { awsClients } from '@buildonce/aws';
import { buildImageTarget, imageConfigChanges, type BuildImageTargetOptions } from '@buildonce/image';
import { fromWorkspace, projectFacts, runExecutor, type ProjectFacts } from '../../lib/context';
import { outputDirOf, taskHash } from '../../lib/options';
import type { OciImageExecutorSchema } from './schema';

/**
 * Options (validated and defaulted by Nx from schema.json) → the libs/image build. `handler` defaults to `cmd[0]`.
 * @throws ConfigError when NX_TASK_HASH is not set (not run by Nx)
 */
export function normalizeOptions(
  o: OciImageExecutorSchema,
  p: ProjectFacts,
  env: NodeJS.ProcessEnv,
  log: (line: string) => void,
): Omit<BuildImageTargetOptions, 'aws'> {
  return {
    project: p.project,
    version: taskHash(env),
    workspaceRoot: p.workspaceRoot,
    outputDir: outputDirOf(p, o.outputPath),
    baseImage: o.baseImage,
    platform: o.platform,
    files: o.files,
    ...imageConfigChanges(o),
    runtime: o.runtime,
    handler: o.handler || o.cmd?.[0],
    cacheDir: o.cacheDir ? fromWorkspace(p.workspaceRoot, o.cacheDir) : undefined,
    processEnv: env,
    log,
  };
}

/**
 * `build` target of image deployables: assembles the OCI image without a Docker daemon (libs/image
 * buildImageTarget). The version is `NX_TASK_HASH`; running outside Nx is an error.
 */
export default async function ociImageExecutor(options: OciImageExecutorSchema, context: ExecutorContext): Promise<{ success: boolean }> {
  return runExecutor(context, async () => {
    const b = normalizeOptions(options, projectFacts(context), process.env, (l) => console.log(l));
    // this executor is its own command layer: its one set of AWS clients (ECR tokens of an ECR base image)
    const aws = awsClients({ env: b.processEnv });
    // tasks of this workspace that write or read this output take turns (lib/output-lock.ts withOutputLock)
    await withOutputLock(b.outputDir, `${b.project}:${context.targetName ?? 'build'}`, b.log, () => buildImageTarget({ ...b, aws }));
  });
}
