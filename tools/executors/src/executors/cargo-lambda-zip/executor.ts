import type { ExecutorContext } from '@nx/devkit';
import { buildRustLambdaZip } from '@buildonce/build';
import { fail, fromWorkspace, projectFacts } from '../../lib/context';
import type { CargoLambdaZipExecutorSchema } from './schema';

/**
 * `build` target of Rust Lambdas: cargo (or cargo-lambda), x86_64 or arm64 on any host → deterministic bootstrap.zip +
 * artifact.json (architecture, glibcMax checked against the runtime, toolchain identity).
 * The version is `NX_TASK_HASH`, which Nx sets for every task process; running outside Nx is an error.
 */
export default async function cargoLambdaZipExecutor(options: CargoLambdaZipExecutorSchema, context: ExecutorContext): Promise<{ success: boolean }> {
  try {
    const p = projectFacts(context);
    const version = process.env.NX_TASK_HASH;
    if (!version) throw new Error('NX_TASK_HASH is not set: run this through nx (nx run <project>:build), the task hash is the artifact version');
    await buildRustLambdaZip({
      project: p.project,
      version,
      cargoDir: options.cargoDir ? fromWorkspace(p.workspaceRoot, options.cargoDir) : p.projectRoot,
      outputDir: options.outputPath ? fromWorkspace(p.workspaceRoot, options.outputPath) : p.defaultOutputDir,
      architecture: options.architecture ?? 'x86_64',
      binary: options.binary || 'bootstrap',
      runtime: options.runtime || 'provided.al2023',
      cargoLambda: options.cargoLambda ?? 'auto',
      toolchain: options.toolchain || undefined,
      offlineRegistry: options.offlineRegistry || process.env.BUILDONCE_CARGO_OFFLINE_REGISTRY || undefined,
      log: (l) => console.log(l),
    });
    return { success: true };
  } catch (e) {
    return fail(context.projectName, e, options.verbose);
  }
}
