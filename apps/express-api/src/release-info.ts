import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ARTIFACT_INFO_FILE, DEPLOYED_MANIFEST_PATH, parseStoredManifestJson } from '@buildonce/artifact';
import { versionSchema } from '@buildonce/values';

/** What the service knows about the bytes it runs. */
export interface ReleaseInfo {
  project: string;
  /** Nx task hash of the build that produced this artifact; `dev` when run from sources */
  version: string;
  /** git commit the version was published from (stored manifest); null when unknown */
  commit: string | null;
  /** ISO time the version was published; null when not deployed from the store */
  publishedAt: string | null;
  /** `artifact`: artifact-info.json found; `deployed`: plus the stored manifest; `dev`: neither */
  source: 'dev' | 'artifact' | 'deployed';
}

/** The release directory is inconsistent (e.g. the deployed manifest names another version). */
export class ReleaseInfoError extends Error {
  override name = 'ReleaseInfoError';
}

function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * Reads the release identity from the directory the service runs from (the directory of `main.js`,
 * i.e. `<root>/releases/<version>` — Node resolves the `current` symlink for the main module, so a
 * running process keeps its own version after `current` flips).
 *  - `<dir>/artifact-info.json` (inside the artifact) gives project and version;
 *  - `<dir>/.buildonce/manifest.json` (written by the deploy) adds commit and publishedAt.
 * Without either (running from sources) the version is `dev`.
 * @throws ReleaseInfoError when a file is malformed or the two disagree on project/version
 */
export function loadReleaseInfo(dir: string, fallbackProject = 'express-api'): ReleaseInfo {
  const infoText = readIfExists(join(dir, ARTIFACT_INFO_FILE));
  if (infoText === undefined) return { project: fallbackProject, version: 'dev', commit: null, publishedAt: null, source: 'dev' };
  let info: { project?: unknown; version?: unknown };
  try {
    info = JSON.parse(infoText) as typeof info;
  } catch (e) {
    throw new ReleaseInfoError(`${join(dir, ARTIFACT_INFO_FILE)} is not JSON: ${(e as Error).message}`);
  }
  const version = versionSchema.safeParse(info.version);
  if (!version.success || typeof info.project !== 'string') {
    throw new ReleaseInfoError(`${join(dir, ARTIFACT_INFO_FILE)} has no valid project/version: the artifact is damaged, redeploy it`);
  }
  const base: ReleaseInfo = { project: info.project, version: version.data, commit: null, publishedAt: null, source: 'artifact' };
  const deployedPath = join(dir, DEPLOYED_MANIFEST_PATH);
  const deployedText = readIfExists(deployedPath);
  if (deployedText === undefined) return base;
  let stored;
  try {
    stored = parseStoredManifestJson(deployedText, deployedPath);
  } catch (e) {
    throw new ReleaseInfoError((e as Error).message);
  }
  if (stored.manifest.version !== base.version || stored.manifest.project !== base.project) {
    throw new ReleaseInfoError(
      `${deployedPath} is for ${stored.manifest.project}@${stored.manifest.version} but the artifact is ${base.project}@${base.version}: the release directory is inconsistent, redeploy`,
    );
  }
  return { ...base, commit: stored.publish.commit ?? null, publishedAt: stored.publish.publishedAt, source: 'deployed' };
}
