import type { ExecutorContext } from '@nx/devkit';

/**
 * An option exactly as typed on the command line, from the running task's unparsed overrides
 * (`__overrides_unparsed__`, which Nx keeps next to the parsed ones). Nx's parser turns digits-only
 * values into numbers, and a 20-digit version (an Nx task hash) does not survive that; the typed text does.
 * @param name option name without dashes (`to`)
 * @returns the last `--name=value` / `--name value` given for this task, or undefined
 */
export function rawOption(context: Pick<ExecutorContext, 'taskGraph' | 'projectName' | 'targetName' | 'configurationName'>, name: string): string | undefined {
  const tasks = Object.values(context.taskGraph?.tasks ?? {});
  const task = tasks.find((t) => t.target.project === context.projectName && t.target.target === context.targetName);
  const raw = (task?.overrides as { __overrides_unparsed__?: unknown } | undefined)?.__overrides_unparsed__;
  if (!Array.isArray(raw)) return undefined;
  let value: string | undefined;
  for (let i = 0; i < raw.length; i++) {
    const arg = String(raw[i]);
    if (arg.startsWith(`--${name}=`)) value = arg.slice(name.length + 3);
    else if (arg === `--${name}` && i + 1 < raw.length) value = String(raw[++i]);
  }
  return value;
}
