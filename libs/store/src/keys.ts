/**
 * The store key layout: the ONE module that builds and parses every key buildonce writes or reads
 * (docs/architecture.md "Store layout"), and the project-key encoding of Nx project names.
 *
 *   [preview/]artifacts/<projectKey>/<version>/<file>        immutable artifact files
 *   [preview/]artifacts/<projectKey>/<version>/manifest.json  immutable stored manifest (written last)
 *   releases/<projectKey>/<env>/current.json                 release pointer (compare-and-swap)
 *   releases/<projectKey>/<env>/history/<seq>.json           append-only history, 10-digit zero-padded seq
 *   releases/<projectKey>/<env>/lock.json                    promotion lease
 *
 * Keys are relative to the store prefix (`s3://bucket/<prefix>/…`, `file:///root/…`).
 * `apps/express-api/deploy/user-data.sh` cannot import this module: it mirrors the artifact and pointer keys,
 * and `apps/express-api/e2e/test/keys-mirror.spec.ts` asserts the mirror builds the same keys.
 */
import { ConfigError } from '@buildonce/errors';
import { STORED_MANIFEST_FILE } from '@buildonce/artifact';

/** Namespace an artifact lives in: `trusted` (main builds) or `preview` (pull requests; never read by chain promotions). */
export type ArtifactNamespace = 'trusted' | 'preview';

/** One segment of an Nx project name: starts with a letter or digit; letters, digits, `.`, `_`, `-`; every `-` followed by a non-`-` (no `--`, no trailing `-`). */
const SEGMENT = /^[A-Za-z0-9](?:[A-Za-z0-9._]|-[A-Za-z0-9._])*$/;
/** Separator of scope and name inside a project key (`@acme/api` ↔ `acme--api`). Never inside a segment. */
const SCOPE_SEPARATOR = '--';
/** Longest project key accepted (bytes; keeps Lambda/SSM names from templates within AWS limits). */
export const MAX_PROJECT_KEY_LENGTH = 128;

/**
 * Maps an Nx project name to its project key: how the project appears in store keys, SSM parameter names,
 * Lambda name templates and local deploy directories. Reversible ({@link projectFromKey}) and collision-free:
 * - `rust-scorer` → `rust-scorer` (plain names map to themselves);
 * - `@acme/api` → `acme--api` (scoped names: scope and name joined by `--`, which plain names never contain).
 * @throws ConfigError naming the project when it cannot be mapped (other characters, `--` inside a segment, too long)
 */
export function projectKey(project: string): string {
  const scoped = /^@([^/]+)\/([^/]+)$/.exec(project);
  const parts = scoped ? [scoped[1]!, scoped[2]!] : [project];
  const key = parts.join(SCOPE_SEPARATOR);
  if (!parts.every((p) => SEGMENT.test(p)) || key.length > MAX_PROJECT_KEY_LENGTH) {
    throw new ConfigError(
      `project name "${project}" cannot be used by buildonce: use "name" or "@scope/name" where each part is letters, digits, ".", "_", "-" (no "--"), at most ${MAX_PROJECT_KEY_LENGTH} characters`,
    );
  }
  return key;
}

/**
 * Inverse of {@link projectKey}: `acme--api` → `@acme/api`, `rust-scorer` → `rust-scorer`.
 * @throws ConfigError when `key` is not a project key
 */
export function projectFromKey(key: string): string {
  const parts = key.split(SCOPE_SEPARATOR);
  const project = parts.length === 2 ? `@${parts[0]}/${parts[1]}` : key;
  if (parts.length > 2 || projectKey(project) !== key) throw new ConfigError(`"${key}" is not a buildonce project key`);
  return project;
}

/** True when `project` can be mapped to a project key. */
export function isValidProjectName(project: string): boolean {
  try {
    projectKey(project);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------- artifacts

/** `[preview/]artifacts/`: where every version of a namespace lives. */
export function artifactsRoot(namespace: ArtifactNamespace = 'trusted'): string {
  return `${namespace === 'preview' ? 'preview/' : ''}artifacts/`;
}

/** `[preview/]artifacts/<projectKey>/`: every version of one project. @throws ConfigError for an unusable project name */
export function projectArtifactsPrefix(project: string, namespace: ArtifactNamespace = 'trusted'): string {
  return `${artifactsRoot(namespace)}${projectKey(project)}/`;
}

/** `[preview/]artifacts/<projectKey>/<version>/`: one version's folder. @throws ConfigError, RangeError for a bad version */
export function versionPrefix(project: string, version: string, namespace: ArtifactNamespace = 'trusted'): string {
  if (!/^[0-9]{1,64}$/.test(version)) throw new RangeError(`invalid version "${version}": a version is the Nx task hash (decimal digits)`);
  return `${projectArtifactsPrefix(project, namespace)}${version}/`;
}

/** Key of one artifact file of a version (`manifest.json` for the stored manifest). */
export function artifactKey(project: string, version: string, file: string, namespace: ArtifactNamespace = 'trusted'): string {
  if (!file || file.includes('/') || file === '.' || file === '..') throw new RangeError(`invalid artifact file name "${file}"`);
  return versionPrefix(project, version, namespace) + file;
}

/** Key of a version's stored manifest (`…/<version>/manifest.json`). */
export function storedManifestKey(project: string, version: string, namespace: ArtifactNamespace = 'trusted'): string {
  return artifactKey(project, version, STORED_MANIFEST_FILE, namespace);
}

/** A parsed artifact key. */
export interface ParsedArtifactKey {
  namespace: ArtifactNamespace;
  /** the Nx project name (decoded from the project key) */
  project: string;
  version: string;
  file: string;
}

const ARTIFACT_KEY = /^(preview\/)?artifacts\/([^/]+)\/([0-9]{1,64})\/([^/]+)$/;

/** Parses `[preview/]artifacts/<projectKey>/<version>/<file>`; undefined for any other key. */
export function parseArtifactKey(key: string): ParsedArtifactKey | undefined {
  const m = ARTIFACT_KEY.exec(key);
  if (!m) return undefined;
  let project: string;
  try {
    project = projectFromKey(m[2]!);
  } catch {
    return undefined;
  }
  return { namespace: m[1] ? 'preview' : 'trusted', project, version: m[3]!, file: m[4]! };
}

// ----------------------------------------------------------------------------------------------- releases

/** Digits of a zero-padded history sequence number (lexicographic key order = numeric order). */
export const SEQ_DIGITS = 10;
/** Largest history sequence number. */
export const MAX_SEQ = 10 ** SEQ_DIGITS - 1;

/** Environment names (dev, staging, prod, pr-<n>, …): the one grammar, also used by libs/release's validateEnvName. */
export const ENVIRONMENT_NAME = /^[a-z][a-z0-9-]{0,62}$/;

function envSegment(env: string): string {
  if (!ENVIRONMENT_NAME.test(env)) throw new ConfigError(`invalid environment name ${JSON.stringify(env)}: names match ^[a-z][a-z0-9-]{0,62}$`);
  return env;
}

/** `releases/`: every ledger of the store. */
export const RELEASES_ROOT = 'releases/';

/** `releases/<projectKey>/`: every environment's ledger of one project. */
export function projectReleasesPrefix(project: string): string {
  return `${RELEASES_ROOT}${projectKey(project)}/`;
}

/** `releases/<projectKey>/<env>/` */
export function releasePrefix(project: string, env: string): string {
  return `${projectReleasesPrefix(project)}${envSegment(env)}/`;
}

/** `releases/<projectKey>/<env>/current.json`: the release pointer. */
export function currentKey(project: string, env: string): string {
  return `${releasePrefix(project, env)}current.json`;
}

/** `releases/<projectKey>/<env>/history/` */
export function historyPrefix(project: string, env: string): string {
  return `${releasePrefix(project, env)}history/`;
}

/**
 * Zero-pads a sequence number to {@link SEQ_DIGITS} digits (`7` → `0000000007`).
 * @throws RangeError outside 1..MAX_SEQ or for non-integers
 */
export function formatSeq(seq: number): string {
  if (!Number.isInteger(seq) || seq < 1 || seq > MAX_SEQ) throw new RangeError(`history sequence number out of range: ${seq}`);
  return String(seq).padStart(SEQ_DIGITS, '0');
}

/** `releases/<projectKey>/<env>/history/<seq>.json` */
export function historyKey(project: string, env: string, seq: number): string {
  return `${historyPrefix(project, env)}${formatSeq(seq)}.json`;
}

/** `releases/<projectKey>/<env>/lock.json`: the promotion lease. */
export function lockKey(project: string, env: string): string {
  return `${releasePrefix(project, env)}lock.json`;
}

/** A parsed ledger key. */
export type ParsedReleaseKey =
  | { kind: 'current'; project: string; env: string }
  | { kind: 'lock'; project: string; env: string }
  | { kind: 'history'; project: string; env: string; seq: number };

const RELEASE_KEY = /^releases\/([^/]+)\/([^/]+)\/(?:(current|lock)\.json|history\/([0-9]{10})\.json)$/;

/** Parses any ledger key (`current.json`, `lock.json`, `history/<seq>.json`); undefined for other keys. */
export function parseReleaseKey(key: string): ParsedReleaseKey | undefined {
  const m = RELEASE_KEY.exec(key);
  if (!m || !ENVIRONMENT_NAME.test(m[2]!)) return undefined;
  let project: string;
  try {
    project = projectFromKey(m[1]!);
  } catch {
    return undefined;
  }
  const env = m[2]!;
  if (m[3]) return { kind: m[3] as 'current' | 'lock', project, env };
  const seq = Number(m[4]);
  return seq >= 1 ? { kind: 'history', project, env, seq } : undefined;
}

/** The seq of a history key or file name (`…/history/0000000007.json` or `0000000007.json` → 7); undefined otherwise. */
export function parseSeqKey(key: string): number | undefined {
  const m = /(?:^|\/)([0-9]{10})\.json$/.exec(key);
  if (!m) return undefined;
  const n = Number(m[1]);
  return n >= 1 ? n : undefined;
}
