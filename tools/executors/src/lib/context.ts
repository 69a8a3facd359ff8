import type { ExecutorContext } from '@nx/devkit';
import { join } from 'node:path';
import { ConfigError, describeFailure } from '@buildonce/errors';
import { parseProjectName, type ProjectName } from '@buildonce/values';

/** The facts an executor passes to libs: project name, its root and the workspace root (absolute). */
export interface ProjectFacts {
  project: ProjectName;
  workspaceRoot: string;
  /** absolute path of the project's root */
  projectRoot: string;
  /** `dist/<projectRoot>` absolute: the default build output directory */
  defaultOutputDir: string;
}

/** Extracts what libs need from an ExecutorContext (libs never see the context). @throws ConfigError without a project, InvalidProjectNameError for a name buildonce cannot key */
export function projectFacts(context: ExecutorContext): ProjectFacts {
  const project = context.projectName;
  if (!project) throw new ConfigError('this executor must run for a project (nx run <project>:<target>)');
  const rel = context.projectsConfigurations?.projects[project]?.root ?? '';
  return {
    project: parseProjectName(project),
    workspaceRoot: context.root,
    projectRoot: join(context.root, rel),
    defaultOutputDir: join(context.root, 'dist', rel),
  };
}

/** Resolves a possibly workspace-relative path option. */
export function fromWorkspace(workspaceRoot: string, p: string): string {
  return p.startsWith('/') ? p : join(workspaceRoot, p);
}

/**
 * Reports an executor failure on stderr and returns `{ success: false }`: an expected failure
 * (BuildonceError) is one line prefixed with `[project]` (its stack only with `verbose`, i.e. Nx's
 * `--verbose`); anything else is a bug: its stack and "this is a bug" are printed. `error` receives the lines
 * (default: stderr; a batch task passes its own output).
 */
export function fail(project: string | undefined, e: unknown, verbose = false, error: (line: string) => void = (l) => console.error(l)): { success: false } {
  for (const line of describeFailure(e, { prefix: project ? `[${project}] ` : '', verbose }).lines) error(line);
  return { success: false };
}

/**
 * An executor's outcome as Nx takes it: `{ success: true }` when `run` resolves; when it throws, the failure is
 * reported by {@link fail} (one line for an expected failure, the stack and "this is a bug" otherwise).
 */
export async function runExecutor(context: ExecutorContext, run: () => Promise<unknown>): Promise<{ success: boolean }> {
  try {
    await run();
    return { success: true };
  } catch (e) {
    return fail(context.projectName, e, context.isVerbose);
  }
}
