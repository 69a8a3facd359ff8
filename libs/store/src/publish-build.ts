import { readBuildManifest } from '@buildonce/artifact';
import { appendGithubOutput } from './ci';
import { formatBytes, publishArtifact, publishMetadataFromEnv, type ArtifactNamespace, type PublishResult } from './artifacts';
import { openStore } from './open';
import { resolveStoreLocation } from './url';

export interface PublishBuildOptions {
  project: string;
  workspaceRoot: string;
  /** directory with artifact.json and the files it names (absolute) */
  outputDir: string;
  /** store URL; default BUILDONCE_STORE, else the embedded file store */
  store?: string;
  /** force the preview namespace; otherwise preview iff the CI environment says pull request */
  preview?: boolean;
  dryRun?: boolean;
  forcePathStyle?: boolean;
  env?: NodeJS.ProcessEnv;
  log: (line: string) => void;
}

/**
 * What `nx run <project>:publish` does: reads the build manifest, publishes the version immutably
 * (see {@link publishArtifact}), logs one line per step, and appends `artifact_uri=` and `version=`
 * to `$GITHUB_OUTPUT`. Pull-request builds (or `preview`) go to the preview namespace.
 * @throws ManifestError, ArtifactIntegrityError, ArtifactConflictError, StoreConfigError, StoreAccessError
 */
export async function publishBuild(o: PublishBuildOptions): Promise<PublishResult & { version: string; namespace: ArtifactNamespace }> {
  const env = o.env ?? process.env;
  const manifest = await readBuildManifest(o.outputDir, o.project);
  const location = resolveStoreLocation({ store: o.store, env, workspaceRoot: o.workspaceRoot });
  const store = openStore(location, { forcePathStyle: o.forcePathStyle, env });
  const metadata = publishMetadataFromEnv(env);
  const namespace: ArtifactNamespace = o.preview || !metadata.trusted ? 'preview' : 'trusted';
  const tag = `[${o.project}]`;
  let lastPct = -1;
  const result = await publishArtifact({
    store,
    manifest,
    dir: o.outputDir,
    metadata,
    namespace,
    dryRun: o.dryRun,
    log: (l) => o.log(`${tag} ${l}`),
    onProgress: (file, loaded, total) => {
      if (total < 8 * 1024 * 1024) return;
      const pct = Math.floor((loaded / total) * 10) * 10;
      if (pct !== lastPct) {
        lastPct = pct;
        o.log(`${tag} uploading ${file}: ${pct}% of ${formatBytes(total)}`);
      }
    },
  });
  if (result.status === 'dry-run') {
    for (const f of result.uploaded) o.log(`${tag} dry run: would upload ${result.uri}${f.name} (${formatBytes(f.size)})`);
    for (const f of result.reused) o.log(`${tag} dry run: ${result.uri}${f} already stored`);
    o.log(`${tag} dry run: would write ${result.uri}manifest.json`);
  } else if (result.status === 'already-published') {
    o.log(`${tag} version ${manifest.version} is already published at ${result.uri} (identical sha256, nothing uploaded)`);
  } else {
    o.log(`${tag} published version ${manifest.version} to ${result.uri}${namespace === 'preview' ? ' (preview namespace)' : ''}`);
  }
  if (result.status !== 'dry-run') await appendGithubOutput({ artifact_uri: result.uri, version: manifest.version }, env);
  return { ...result, version: manifest.version, namespace };
}
