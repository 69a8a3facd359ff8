import type { ExecutorContext } from '@nx/devkit';
import { join } from 'node:path';

/** The facts an executor passes to libs: project name, its root and the workspace root (absolute). */
export interface ProjectFacts {
  project: string;
  workspaceRoot: string;
  /** absolute path of the project's root */
  projectRoot: string;
  /** `dist/<projectRoot>` absolute: the default build output directory */
  defaultOutputDir: string;
}

/** Extracts what libs need from an ExecutorContext (libs never see the context). @throws Error when run without a project */
export function projectFacts(context: ExecutorContext): ProjectFacts {
  const project = context.projectName;
  if (!project) throw new Error('this executor must run for a project (nx run <project>:<target>)');
  const rel = context.projectsConfigurations?.projects[project]?.root ?? '';
  return {
    project,
    workspaceRoot: context.root,
    projectRoot: join(context.root, rel),
    defaultOutputDir: join(context.root, 'dist', rel),
  };
}

/** Resolves a possibly workspace-relative path option. */
export function fromWorkspace(workspaceRoot: string, p: string): string {
  return p.startsWith('/') ? p : join(workspaceRoot, p);
}

/** Logs one line of an executor failure (the error's message only; stack with --verbose) and returns `{ success: false }`. */
export function fail(project: string | undefined, e: unknown, verbose = false): { success: false } {
  const msg = e instanceof Error ? e.message : String(e);
  const prefixed = project && !msg.startsWith(`[${project}]`) ? `[${project}] ${msg}` : msg;
  console.error(prefixed);
  if (verbose && e instanceof Error && e.stack) console.error(e.stack);
  return { success: false };
}
