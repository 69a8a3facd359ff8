import { ENVIRONMENT_NAME } from '@buildonce/store';
import { InvalidEnvironmentNameError } from './errors';

/** Environment names: lowercase letter first, then lowercase letters, digits and `-`; 1–63 chars (the store keys' grammar). */
export const ENV_NAME_RE = ENVIRONMENT_NAME;

/** Preview environments of pull requests: `pr-<n>` (n a positive decimal without leading zeros). */
export const PREVIEW_ENV_RE = /^pr-[1-9][0-9]{0,9}$/;

/**
 * Validates an environment name syntactically. Pure: no I/O, so a bad name (`../x`, `Prod`, ``) is
 * refused before anything is read or written.
 * @returns the name, unchanged
 * @throws InvalidEnvironmentNameError (one line, quotes the name and the rule)
 */
export function validateEnvName(name: unknown): string {
  if (typeof name !== 'string' || name === '') {
    throw new InvalidEnvironmentNameError('no environment given: pass --env=<name> (e.g. --env=dev)');
  }
  if (!ENV_NAME_RE.test(name)) {
    throw new InvalidEnvironmentNameError(
      `invalid environment name ${JSON.stringify(name)}: names match ^[a-z][a-z0-9-]{0,62}$ (lowercase letter first, then lowercase letters, digits, "-")`,
    );
  }
  return name;
}

/** True for preview environment names (`pr-12`). Does not validate the rest of the syntax. */
export function isPreviewEnvName(name: string): boolean {
  return PREVIEW_ENV_RE.test(name);
}
