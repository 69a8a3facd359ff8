import type { ExecutorContext } from '@nx/devkit';
import { buildRustLambdaZip, type RustLambdaBuild } from '@buildonce/rust';
import { withOutputLock } from '../../lib/output-lock';
import { fromWorkspace, projectFacts, runExecutor, type ProjectFacts } from '../../lib/context';
import { outputDirOf, taskHash } from '../../lib/options';
import type { CargoLambdaZipExecutorSchema } from './schema';

/**
 * Options (validated and defaulted by Nx from schema.json) → the libs/rust Rust Lambda build.
 * `offlineRegistry` falls back to BUILDONCE_CARGO_OFFLINE_REGISTRY (a build input).
 * @throws ConfigError when NX_TASK_HASH is not set (not run by Nx)
 */
export function normalizeOptions(o: CargoLambdaZipExecutorSchema, p: ProjectFacts, env: NodeJS.ProcessEnv, log: (line: string) => void): RustLambdaBuild {
  return {
    project: p.project,
    version: taskHash(env),
    cargoDir: o.cargoDir ? fromWorkspace(p.workspaceRoot, o.cargoDir) : p.projectRoot,
    outputDir: outputDirOf(p, o.outputPath),
    architecture: o.architecture,
    binary: o.binary,
    runtime: o.runtime,
    cargoLambda: o.cargoLambda,
    toolchain: o.toolchain || undefined,
    offlineRegistry: o.offlineRegistry || env.BUILDONCE_CARGO_OFFLINE_REGISTRY || undefined,
    log,
  };
}

/**
 * `build` target of Rust Lambdas: cargo (or cargo-lambda), x86_64 or arm64 on any host → deterministic bootstrap.zip +
 * artifact.json (architecture, glibcMax checked against the runtime, toolchain identity).
 * The version is `NX_TASK_HASH`, which Nx sets for every task process; running outside Nx is an error.
 */
export default async function cargoLambdaZipExecutor(options: CargoLambdaZipExecutorSchema, context: ExecutorContext): Promise<{ success: boolean }> {
  return runExecutor(context, async () => {
    const b = normalizeOptions(options, projectFacts(context), process.env, (l) => console.log(l));
    // tasks of this workspace that write or read this output take turns (lib/output-lock.ts withOutputLock)
    await withOutputLock(b.outputDir, `${b.project}:${context.targetName ?? 'build'}`, b.log, () => buildRustLambdaZip(b));
  });
}
