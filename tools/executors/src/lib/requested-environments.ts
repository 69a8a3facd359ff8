import type { ExecutorContext } from '@nx/devkit';
import { loadConfig, resolveEnvironment } from '@buildonce/config';
import { parseEnvironmentName } from '@buildonce/values';

/**
 * The environments this Nx run is about to promote or roll `project` back to: the `--env` overrides of the
 * project's tasks in the run's task graph (`nx run p:promote --env=prod`, `nx affected -t promote --env=dev`).
 * Publish runs before those tasks; reading them lets it refuse a typo before anything is uploaded.
 * @returns distinct names as given (not validated), in task-graph order
 */
export function requestedEnvironments(context: Pick<ExecutorContext, 'taskGraph'>, project: string): unknown[] {
  const names: unknown[] = [];
  for (const task of Object.values(context.taskGraph?.tasks ?? {})) {
    if (task.target.project !== project || !task.overrides || !('env' in task.overrides)) continue;
    const env = (task.overrides as Record<string, unknown>).env;
    if (!names.includes(env)) names.push(env);
  }
  return names;
}

/**
 * Checks every environment this run will promote `project` to against buildonce.json (syntax, then
 * existence): the same checks promote makes, made before publish uploads.
 * @throws InvalidEnvironmentNameError, UnknownEnvironmentError (one line, names the environment and the known ones), ConfigError
 */
export async function checkRequestedEnvironments(
  context: Pick<ExecutorContext, 'taskGraph'>,
  project: string,
  workspaceRoot: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const names = requestedEnvironments(context, project);
  if (!names.length) return;
  const config = await loadConfig(workspaceRoot, env);
  // Nx parses `--env=123` as a number: check it as the name that was typed
  for (const name of names) resolveEnvironment(config, parseEnvironmentName(typeof name === 'number' ? String(name) : name));
}
