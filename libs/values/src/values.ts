/**
 * The values every buildonce layer passes around, each with ONE grammar, one zod schema, one parser and one
 * error class. They are parsed once at the edge (executor options, CLI flags, buildonce.json, stored JSON) into
 * branded types; code below takes the branded type and never checks the grammar again.
 *
 *   Version          ^[0-9]{1,64}$                         the Nx task hash of a project's build target
 *   EnvironmentName  ^[a-z][a-z0-9-]{0,62}$                dev, staging, prod, pr-<n>, …
 *   preview env      ^pr-[1-9][0-9]{0,9}$                  the environments of pull requests (a subset)
 *   ProjectName      name | @scope/name                    each part: letter or digit first, then letters, digits,
 *                                                           ".", "_", "-" with no "--" and no trailing "-";
 *                                                           at most 128 characters (its project key's length)
 *
 * The executors' `schema.json` patterns are these strings (checked by values-schemas.spec.ts in tools/executors).
 */
import { ConfigError } from '@buildonce/errors';
import { z } from 'zod';

/** The grammar of a version (as a JSON-schema / RegExp source). */
export const VERSION_PATTERN = '^[0-9]{1,64}$';
/** The grammar of an environment name (as a JSON-schema / RegExp source). */
export const ENVIRONMENT_NAME_PATTERN = '^[a-z][a-z0-9-]{0,62}$';
/** The grammar of a preview environment's name: `pr-<n>`, n a positive decimal without leading zeros. */
export const PREVIEW_ENVIRONMENT_PATTERN = '^pr-[1-9][0-9]{0,9}$';
/** Longest project name (= its project key's length: `@a/b` ↔ `a--b`), in characters. */
export const MAX_PROJECT_NAME_LENGTH = 128;
const SEGMENT = '[A-Za-z0-9](?:[A-Za-z0-9._]|-[A-Za-z0-9._])*';
/** The grammar of an Nx project name buildonce can key: `name` or `@scope/name` (see the header). */
export const PROJECT_NAME_PATTERN = `^(?:@${SEGMENT}/)?${SEGMENT}$`;

const VERSION_RE = new RegExp(VERSION_PATTERN);
const ENVIRONMENT_NAME_RE = new RegExp(ENVIRONMENT_NAME_PATTERN);
const PREVIEW_ENVIRONMENT_RE = new RegExp(PREVIEW_ENVIRONMENT_PATTERN);
const PROJECT_NAME_RE = new RegExp(PROJECT_NAME_PATTERN);

const VERSION_RULE = 'a version is the decimal Nx task hash of the build (1-64 digits)';
const ENVIRONMENT_RULE = `names match ${ENVIRONMENT_NAME_PATTERN} (lowercase letter first, then lowercase letters, digits, "-")`;
const PROJECT_RULE = `use "name" or "@scope/name" where each part is letters, digits, ".", "_", "-" (no "--"), at most ${MAX_PROJECT_NAME_LENGTH} characters`;

/** A version: the decimal Nx task hash of a project's build target. */
export const versionSchema = z.string().regex(VERSION_RE, VERSION_RULE).brand<'Version'>();
export type Version = z.infer<typeof versionSchema>;
/** An environment name (chain environments and previews alike). */
export const environmentNameSchema = z.string().regex(ENVIRONMENT_NAME_RE, ENVIRONMENT_RULE).brand<'EnvironmentName'>();
export type EnvironmentName = z.infer<typeof environmentNameSchema>;
/** An Nx project name that buildonce can key (store keys, SSM names, deploy directories). */
export const projectNameSchema = z.string().max(MAX_PROJECT_NAME_LENGTH, PROJECT_RULE).regex(PROJECT_NAME_RE, PROJECT_RULE).brand<'ProjectName'>();
export type ProjectName = z.infer<typeof projectNameSchema>;

/** A value given for a version is not one. */
export class InvalidVersionError extends ConfigError {
  override name = 'InvalidVersionError';
}
/** A value given for an environment name is not one (checked before any I/O). */
export class InvalidEnvironmentNameError extends ConfigError {
  override name = 'InvalidEnvironmentNameError';
}
/** A project name buildonce cannot key. */
export class InvalidProjectNameError extends ConfigError {
  override name = 'InvalidProjectNameError';
}

/** The same one line for every edge (Nx option, CLI flag, buildonce.json field): `<what> "<raw>" is not …: <rule>`. */
const quote = (raw: unknown) => (typeof raw === 'string' ? JSON.stringify(raw) : String(raw));

/**
 * Parses a version.
 * @param what names the input in the message (`--to`, `version`, `buildonce.json …`)
 * @throws InvalidVersionError (one line)
 */
export function parseVersion(raw: unknown, what = 'version'): Version {
  if (typeof raw === 'string' && VERSION_RE.test(raw)) return raw as Version;
  throw new InvalidVersionError(`${what} ${quote(raw)} is not a version: ${VERSION_RULE}`);
}

/**
 * Parses an environment name.
 * @param what where the value came from, added to the message (`--env`)
 * @throws InvalidEnvironmentNameError (one line; an absent value asks for `--env=<name>`)
 */
export function parseEnvironmentName(raw: unknown, what = 'environment name'): EnvironmentName {
  // a flag given without a value arrives as `true` from Nx's parser
  if (typeof raw !== 'string' || raw === '') throw new InvalidEnvironmentNameError(`no environment given: pass --env=<name> (e.g. --env=dev)`);
  if (ENVIRONMENT_NAME_RE.test(raw)) return raw as EnvironmentName;
  const where = what === 'environment name' ? '' : ` (${what})`;
  throw new InvalidEnvironmentNameError(`invalid environment name ${quote(raw)}${where}: ${ENVIRONMENT_RULE}`);
}

/**
 * Parses an Nx project name that buildonce can key.
 * @throws InvalidProjectNameError (one line)
 */
export function parseProjectName(raw: unknown): ProjectName {
  if (isProjectName(raw)) return raw;
  throw new InvalidProjectNameError(`project name ${quote(raw)} cannot be used by buildonce: ${PROJECT_RULE}`);
}

/** True for a well-formed version (a guard, for parsers that skip rather than refuse: store listings). */
export function isVersion(raw: unknown): raw is Version {
  return typeof raw === 'string' && VERSION_RE.test(raw);
}

/** True for a well-formed environment name (a guard, for parsers that skip rather than refuse). */
export function isEnvironmentName(raw: unknown): raw is EnvironmentName {
  return typeof raw === 'string' && ENVIRONMENT_NAME_RE.test(raw);
}

/** True for a project name buildonce can key. */
export function isProjectName(raw: unknown): raw is ProjectName {
  return typeof raw === 'string' && raw.length <= MAX_PROJECT_NAME_LENGTH && PROJECT_NAME_RE.test(raw);
}

/** True for preview environment names (`pr-12`); a preview name is also an {@link EnvironmentName}. */
export function isPreviewEnvironment(name: string): boolean {
  return PREVIEW_ENVIRONMENT_RE.test(name);
}
