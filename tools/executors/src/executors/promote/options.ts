import type { DeployTargetOptions } from '@buildonce/deploy';
import { InvalidEnvironmentNameError } from '@buildonce/release';

/** Deploy target options shared by promote and rollback. */
export interface DeployOptionsInput {
  target?: 'lambda' | 'ec2' | 'local';
  functionName?: string;
  alias?: string;
  parameterName?: string;
  localRoot?: string;
}

/** Normalises the deploy target options of promote/rollback (empty strings → defaults in libs/deploy). */
export function deployOptions(o: DeployOptionsInput): DeployTargetOptions {
  return {
    target: o.target ?? 'local',
    functionName: o.functionName || undefined,
    alias: o.alias || undefined,
    parameterName: o.parameterName || undefined,
    localRoot: o.localRoot || undefined,
  };
}

/**
 * `--env` as typed. Nx's CLI parser turns numeric-looking values into numbers; an environment name
 * never is one, so anything but a string is refused as invalid (before any I/O).
 */
export function envOption(v: unknown): string {
  if (v === undefined || v === null || v === '') return '';
  if (typeof v !== 'string') throw new InvalidEnvironmentNameError(`invalid environment name ${JSON.stringify(v)}: names match ^[a-z][a-z0-9-]{0,62}$`);
  return v;
}

/**
 * A version option (`--to`). Versions are Nx task hashes, up to 20 digits: when Nx's CLI parser has
 * already turned one into an imprecise number, refuse it rather than roll back to a wrong version.
 * @throws Error naming the fix (`--to=v<version>`)
 */
export function versionOption(v: unknown, name: string): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new Error(`--${name}=${v} lost digits when parsed as a number: write it as --${name}=v<version>`);
    return String(v);
  }
  const s = String(v).trim();
  return s.startsWith('v') ? s.slice(1) : s;
}
