import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readJsonFile, type ExecutorContext } from '@nx/devkit';
import { buildNodeTarball, runtimeForTarget, type NodeTarballBuild } from '@buildonce/node-package';
import { withOutputLock } from '../../lib/output-lock';
import { projectKey } from '@buildonce/store';
import { fromWorkspace, projectFacts, runExecutor, type ProjectFacts } from '../../lib/context';
import { outputDirOf, taskHash } from '../../lib/options';
import type { PackageTarballExecutorSchema } from './schema';

/**
 * Options (validated and defaulted by Nx from schema.json) → the libs/node-package tarball build. Unset options
 * derive from the project: `main` = `<projectRoot>/src/main.ts`, `tarballName` = `<projectKey>-deployment.tar.gz`,
 * `runtime` from `target` (`node20` → `node>=20`), `format` from the app's declaration, the start check on
 * unless `startCheck: false`.
 * @param conditions the workspace's `customConditions` ({@link workspaceConditions})
 * @throws ConfigError when NX_TASK_HASH is not set (not run by Nx)
 */
export function normalizeOptions(
  o: PackageTarballExecutorSchema,
  p: ProjectFacts,
  env: NodeJS.ProcessEnv,
  description: string | undefined,
  log: (line: string) => void,
  conditions: readonly string[] = [],
): NodeTarballBuild {
  return {
    project: p.project,
    version: taskHash(env),
    workspaceRoot: p.workspaceRoot,
    main: o.main ? fromWorkspace(p.workspaceRoot, o.main) : join(p.projectRoot, 'src', 'main.ts'),
    outputDir: outputDirOf(p, o.outputPath),
    tarballName: o.tarballName ?? `${projectKey(p.project)}-deployment.tar.gz`,
    entry: o.entry,
    target: o.target,
    runtime: o.runtime ?? runtimeForTarget(o.target),
    architecture: o.architecture,
    minify: o.minify,
    sourcemap: o.sourcemap,
    description,
    ...(o.format ? { format: o.format } : {}),
    conditions,
    ...(o.startCheck === false ? {} : { startCheck: { timeoutMs: o.startCheckTimeout ?? 60_000 } }),
    log,
  };
}

/**
 * `compilerOptions.customConditions` of the workspace's `tsconfig.base.json` (Nx's TypeScript solution setup
 * lists e.g. `@acme/source` there; its libraries' package `exports` map that condition to their sources), so
 * the bundle resolves workspace libraries the way the workspace's TypeScript does. Empty without the file.
 * @throws Error naming the file when it is not valid JSON (with comments)
 */
export function workspaceConditions(workspaceRoot: string): string[] {
  const file = join(workspaceRoot, 'tsconfig.base.json');
  if (!existsSync(file)) return [];
  const c = readJsonFile<{ compilerOptions?: { customConditions?: unknown } }>(file).compilerOptions?.customConditions;
  return Array.isArray(c) ? c.filter((x): x is string => typeof x === 'string') : [];
}

/**
 * `build` target of Node apps shipped as tarballs: esbuild bundle → deterministic
 * `<projectKey>-deployment.tar.gz` + artifact.json. The version is `NX_TASK_HASH`, which Nx sets for
 * every task process; running outside Nx is an error.
 */
export default async function packageTarballExecutor(options: PackageTarballExecutorSchema, context: ExecutorContext): Promise<{ success: boolean }> {
  return runExecutor(context, async () => {
    const p = projectFacts(context);
    const pkg = JSON.parse(await readFile(join(p.projectRoot, 'package.json'), 'utf8').catch(() => '{}')) as { description?: string };
    const b = normalizeOptions(options, p, process.env, pkg.description, (l) => console.log(l), workspaceConditions(p.workspaceRoot));
    // tasks of this workspace that write or read this output take turns (lib/output-lock.ts withOutputLock)
    await withOutputLock(b.outputDir, `${p.project}:${context.targetName ?? 'build'}`, b.log, () => buildNodeTarball(b));
  });
}
