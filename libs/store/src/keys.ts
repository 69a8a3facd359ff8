/**
 * The store key layout: the ONE module that builds and parses every key buildonce writes or reads
 * (docs/architecture.md "Store layout"), and the project-key encoding of Nx project names.
 *
 *   [preview/]artifacts/<projectKey>/<version>/<file>        immutable artifact files
 *   [preview/]artifacts/<projectKey>/<version>/provenance.intoto.json  immutable signed provenance (DSSE), before the manifest
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
import { PROVENANCE_FILE, STORED_MANIFEST_FILE } from '@buildonce/artifact';
import { isEnvironmentName, isProjectName, isVersion, type EnvironmentName, type ProjectName, type Version } from '@buildonce/values';

/** Namespace an artifact lives in: `trusted` (main builds) or `preview` (pull requests; never read by chain promotions). */
export type ArtifactNamespace = 'trusted' | 'preview';

/** Separator of scope and name inside a project key (`@acme/api` ↔ `acme--api`). Never inside a name's part (values.ts grammar). */
const SCOPE_SEPARATOR = '--';

/** How a project appears in store keys, SSM parameter names, Lambda name templates and deploy directories. */
export type ProjectKey = string & { readonly __projectKey: true };

/**
 * Maps a project name to its project key. Reversible ({@link projectFromKey}) and collision-free, the same
 * length as the name:
 * - `rust-scorer` → `rust-scorer` (plain names map to themselves);
 * - `@acme/api` → `acme--api` (scoped names: scope and name joined by `--`, which a name's parts never contain).
 */
export function projectKey(project: ProjectName): ProjectKey {
  const scoped = /^@([^/]+)\/([^/]+)$/.exec(project);
  return (scoped ? `${scoped[1]}${SCOPE_SEPARATOR}${scoped[2]}` : project) as ProjectKey;
}

/**
 * Inverse of {@link projectKey}: `acme--api` → `@acme/api`, `rust-scorer` → `rust-scorer`.
 * @throws ConfigError when `key` is not a project key
 */
export function projectFromKey(key: string): ProjectName {
  const parts = key.split(SCOPE_SEPARATOR);
  const project = parts.length === 2 ? `@${parts[0]}/${parts[1]}` : key;
  if (parts.length > 2 || !isProjectName(project)) throw new ConfigError(`"${key}" is not a buildonce project key`);
  return project;
}

// ---------------------------------------------------------------------------------------------- artifacts

/** `[preview/]artifacts/`: where every version of a namespace lives. */
export function artifactsRoot(namespace: ArtifactNamespace = 'trusted'): string {
  return `${namespace === 'preview' ? 'preview/' : ''}artifacts/`;
}

/** `[preview/]artifacts/<projectKey>/`: every version of one project. */
export function projectArtifactsPrefix(project: ProjectName, namespace: ArtifactNamespace = 'trusted'): string {
  return `${artifactsRoot(namespace)}${projectKey(project)}/`;
}

/** `[preview/]artifacts/<projectKey>/<version>/`: one version's folder. */
export function versionPrefix(project: ProjectName, version: Version, namespace: ArtifactNamespace = 'trusted'): string {
  return `${projectArtifactsPrefix(project, namespace)}${version}/`;
}

/** Key of one artifact file of a version (`manifest.json` for the stored manifest). */
export function artifactKey(project: ProjectName, version: Version, file: string, namespace: ArtifactNamespace = 'trusted'): string {
  if (!file || file.includes('/') || file === '.' || file === '..') throw new RangeError(`invalid artifact file name "${file}"`);
  return versionPrefix(project, version, namespace) + file;
}

/** Key of a version's stored manifest (`…/<version>/manifest.json`). */
export function storedManifestKey(project: ProjectName, version: Version, namespace: ArtifactNamespace = 'trusted'): string {
  return artifactKey(project, version, STORED_MANIFEST_FILE, namespace);
}

/** Key of a version's signed provenance (`…/<version>/provenance.intoto.json`, a DSSE envelope). */
export function provenanceKey(project: ProjectName, version: Version, namespace: ArtifactNamespace = 'trusted'): string {
  return artifactKey(project, version, PROVENANCE_FILE, namespace);
}

/** A parsed artifact key. */
export interface ParsedArtifactKey {
  namespace: ArtifactNamespace;
  /** the Nx project name (decoded from the project key) */
  project: ProjectName;
  version: Version;
  file: string;
}

const ARTIFACT_KEY = /^(preview\/)?artifacts\/([^/]+)\/([0-9]{1,64})\/([^/]+)$/;

/** Parses `[preview/]artifacts/<projectKey>/<version>/<file>`; undefined for any other key. */
export function parseArtifactKey(key: string): ParsedArtifactKey | undefined {
  const m = ARTIFACT_KEY.exec(key);
  if (!m) return undefined;
  let project: ProjectName;
  try {
    project = projectFromKey(m[2]!);
  } catch {
    return undefined;
  }
  if (!isVersion(m[3])) return undefined;
  return { namespace: m[1] ? 'preview' : 'trusted', project, version: m[3], file: m[4]! };
}

// ----------------------------------------------------------------------------------------------- releases

/** Digits of a zero-padded history sequence number (lexicographic key order = numeric order). */
export const SEQ_DIGITS = 10;
/** Largest history sequence number. */
export const MAX_SEQ = 10 ** SEQ_DIGITS - 1;

/** `releases/`: every ledger of the store. */
export const RELEASES_ROOT = 'releases/';

/** `releases/<projectKey>/`: every environment's ledger of one project. */
export function projectReleasesPrefix(project: ProjectName): string {
  return `${RELEASES_ROOT}${projectKey(project)}/`;
}

/** `releases/<projectKey>/<env>/` */
export function releasePrefix(project: ProjectName, env: EnvironmentName): string {
  return `${projectReleasesPrefix(project)}${env}/`;
}

/** `releases/<projectKey>/<env>/current.json`: the release pointer. */
export function currentKey(project: ProjectName, env: EnvironmentName): string {
  return `${releasePrefix(project, env)}current.json`;
}

/** `releases/<projectKey>/<env>/history/` */
export function historyPrefix(project: ProjectName, env: EnvironmentName): string {
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
export function historyKey(project: ProjectName, env: EnvironmentName, seq: number): string {
  return `${historyPrefix(project, env)}${formatSeq(seq)}.json`;
}

/** `releases/<projectKey>/<env>/lock.json`: the promotion lease. */
export function lockKey(project: ProjectName, env: EnvironmentName): string {
  return `${releasePrefix(project, env)}lock.json`;
}

/** A parsed ledger key. */
export type ParsedReleaseKey =
  | { kind: 'current'; project: ProjectName; env: EnvironmentName }
  | { kind: 'lock'; project: ProjectName; env: EnvironmentName }
  | { kind: 'history'; project: ProjectName; env: EnvironmentName; seq: number };

const RELEASE_KEY = /^releases\/([^/]+)\/([^/]+)\/(?:(current|lock)\.json|history\/([0-9]{10})\.json)$/;

/** Parses any ledger key (`current.json`, `lock.json`, `history/<seq>.json`); undefined for other keys. */
export function parseReleaseKey(key: string): ParsedReleaseKey | undefined {
  const m = RELEASE_KEY.exec(key);
  if (!m || !isEnvironmentName(m[2])) return undefined;
  let project: ProjectName;
  try {
    project = projectFromKey(m[1]!);
  } catch {
    return undefined;
  }
  const env = m[2] as EnvironmentName;
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
