import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExecutorContext } from '@nx/devkit';
import { buildNodeTarball, runtimeForTarget } from '@buildonce/build';
import { fail, fromWorkspace, projectFacts } from '../../lib/context';
import type { PackageTarballExecutorSchema } from './schema';

/**
 * `build` target of Node apps shipped as tarballs: esbuild bundle → deterministic
 * `<project>-deployment.tar.gz` + artifact.json. The version is `NX_TASK_HASH`, which Nx sets for
 * every task process; running outside Nx is an error.
 */
export default async function packageTarballExecutor(options: PackageTarballExecutorSchema, context: ExecutorContext): Promise<{ success: boolean }> {
  try {
    const p = projectFacts(context);
    const version = process.env.NX_TASK_HASH;
    if (!version) throw new Error('NX_TASK_HASH is not set: run this through nx (nx run <project>:build), the task hash is the artifact version');
    const target = options.target || 'node20';
    const pkg = JSON.parse(await readFile(join(p.projectRoot, 'package.json'), 'utf8').catch(() => '{}')) as { description?: string };
    await buildNodeTarball({
      project: p.project,
      version,
      workspaceRoot: p.workspaceRoot,
      main: options.main ? fromWorkspace(p.workspaceRoot, options.main) : join(p.projectRoot, 'src', 'main.ts'),
      outputDir: options.outputPath ? fromWorkspace(p.workspaceRoot, options.outputPath) : p.defaultOutputDir,
      tarballName: options.tarballName || `${p.project}-deployment.tar.gz`,
      entry: options.entry || 'main.js',
      target,
      runtime: options.runtime || runtimeForTarget(target),
      architecture: options.architecture ?? 'x86_64',
      minify: options.minify ?? true,
      sourcemap: options.sourcemap ?? true,
      description: pkg.description,
      log: (l) => console.log(l),
    });
    return { success: true };
  } catch (e) {
    return fail(context.projectName, e, options.verbose);
  }
}
