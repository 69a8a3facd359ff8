import type { DeployTargetOptions } from '@buildonce/deploy';
import { ConfigError } from '@buildonce/errors';
import { fromWorkspace, type ProjectFacts } from './context';
import { machinePrinter } from './output';
import { parseEnvironmentName, parseVersion, type EnvironmentName, type Version } from '@buildonce/values';

/** Deploy target options of promote and rollback, as their schemas define them (defaults applied by Nx). */
export interface DeployOptionsInput {
  target: 'lambda' | 'ec2' | 'local';
  functionName: string;
  alias: string;
  parameterName: string;
  localRoot: string;
}

/** The options promote and rollback share, as their schemas define them (defaults applied by Nx). */
export interface DeployExecutorOptions extends DeployOptionsInput {
  env: string;
  store?: string;
  /** Nx's CLI parser may turn a digits-only value into a number */
  reason?: string | number;
  dryRun: boolean;
}

/**
 * The fields promote and rollback both take from their options: project, workspace, `--env` (parsed here),
 * the deploy target options, store, dry run and `--reason` (as a string: Nx may have parsed it as a number).
 * @throws EnvironmentNameError for a bad `--env`
 */
export function deployCommandOptions(
  o: DeployExecutorOptions,
  p: ProjectFacts,
  log: (line: string) => void,
): {
  project: ProjectFacts['project'];
  workspaceRoot: string;
  env: EnvironmentName;
  deploy: DeployTargetOptions;
  store?: string;
  dryRun: boolean;
  reason?: string;
  log: (line: string) => void;
} {
  return {
    project: p.project,
    workspaceRoot: p.workspaceRoot,
    env: parseEnvironmentName(o.env, '--env'),
    deploy: deployOptions(o),
    store: o.store,
    dryRun: o.dryRun,
    ...(o.reason !== undefined ? { reason: String(o.reason) } : {}),
    log,
  };
}

/**
 * The fields the printing commands (releases, resolve) take: project, workspace, store, logs on stderr and
 * the machine output on stdout (and `--outputFile`).
 */
export function printingCommandOptions(o: { store?: string; outputFile?: string }, p: ProjectFacts) {
  return {
    project: p.project,
    workspaceRoot: p.workspaceRoot,
    store: o.store,
    log: (l: string) => console.error(l),
    print: machinePrinter(p.workspaceRoot, o.outputFile),
  };
}

/** The deploy target options libs/deploy takes (a pick: the schema already applied the defaults). */
export function deployOptions(o: DeployOptionsInput): DeployTargetOptions {
  return { target: o.target, functionName: o.functionName, alias: o.alias, parameterName: o.parameterName, localRoot: o.localRoot };
}

/** The build output directory: `outputPath` (workspace-relative or absolute) or `dist/<projectRoot>`. */
export function outputDirOf(p: ProjectFacts, outputPath: string | undefined): string {
  return outputPath ? fromWorkspace(p.workspaceRoot, outputPath) : p.defaultOutputDir;
}

/**
 * A version option (`--to`). Versions are Nx task hashes, up to 20 digits: when Nx's CLI parser has
 * already turned one into an imprecise number, refuse it rather than roll back to a wrong version.
 * @throws ConfigError naming the fix (`--to=v<version>`), InvalidVersionError
 */
export function versionOption(v: string | number | undefined, name: string): Version | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new ConfigError(`--${name}=${v} lost digits when parsed as a number: write it as --${name}=v<version>`);
    return parseVersion(String(v), `--${name}`);
  }
  const s = v.trim();
  return parseVersion(s.startsWith('v') ? s.slice(1) : s, `--${name}`);
}

/** `NX_TASK_HASH` of the running task: the version a build produces. @throws ConfigError outside Nx */
export function taskHash(env: NodeJS.ProcessEnv = process.env): Version {
  const version = env.NX_TASK_HASH;
  if (!version) throw new ConfigError('NX_TASK_HASH is not set: run this through nx (nx run <project>:build), the task hash is the artifact version');
  return parseVersion(version, 'NX_TASK_HASH');
}
