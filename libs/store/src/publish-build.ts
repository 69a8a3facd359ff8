import { performance } from 'node:perf_hooks';
import { readBuildManifest, type Manifest } from '@buildonce/artifact';
import { awsClients } from '@buildonce/aws';
import { attest, buildContextFromEnv, resolvedDependencies, signerFromSpec, type Signer } from '@buildonce/provenance';
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
  /** signing key spec (`kms:<key-id|arn|alias>` or `file:<path>`); default BUILDONCE_SIGNING_KEY; empty = unsigned */
  signingKey?: string;
  /** the Nx target that built the version (recorded in the provenance); default `build` */
  buildTarget?: string;
  /** that target's options (recorded in the provenance) */
  buildOptions?: Record<string, unknown>;
  /** absolute project root (its lock files, e.g. Cargo.lock, are recorded in the provenance) */
  projectRoot?: string;
  log: (line: string) => void;
}

/** What signing added to a publish: the key used and the time spent (ms); undefined when unsigned. */
export interface PublishSigning {
  key: string;
  keyid: string;
  /** statement + DSSE signing time, ms */
  signMs: number;
  /** everything provenance added to the publish: build facts (git), lock file digests, statement, signature; ms */
  totalMs: number;
}

/**
 * What `nx run <project>:publish` does: reads the build manifest, publishes the version immutably
 * (see {@link publishArtifact}), logs one line per step, and appends `artifact_uri=` and `version=`
 * to `$GITHUB_OUTPUT`. Pull-request builds (or `preview`) go to the preview namespace.
 * @throws ManifestError, ArtifactIntegrityError, ArtifactConflictError, StoreConfigError, StoreAccessError
 */
export async function publishBuild(o: PublishBuildOptions): Promise<PublishResult & { version: string; namespace: ArtifactNamespace; signing?: PublishSigning }> {
  const env = o.env ?? process.env;
  const startedOn = new Date();
  const manifest = await readBuildManifest(o.outputDir, o.project);
  const location = resolveStoreLocation({ store: o.store, env, workspaceRoot: o.workspaceRoot });
  const store = openStore(location, { forcePathStyle: o.forcePathStyle, env });
  const metadata = publishMetadataFromEnv(env);
  const namespace: ArtifactNamespace = o.preview || !metadata.trusted ? 'preview' : 'trusted';
  const tag = `[${o.project}]`;
  const keySpec = o.signingKey ?? env.BUILDONCE_SIGNING_KEY ?? '';
  // resolve the key before uploading anything, so a bad key fails the publish with nothing written
  const signer = keySpec && !o.dryRun ? await signerFromSpec(keySpec, { kms: () => awsClients({ env }).kms(), cwd: o.workspaceRoot }) : undefined;
  let signing: PublishSigning | undefined;
  let lastPct = -1;
  const result = await publishArtifact({
    store,
    manifest,
    dir: o.outputDir,
    metadata,
    namespace,
    dryRun: o.dryRun,
    log: (l) => o.log(`${tag} ${l}`),
    provenance: signer
      ? async () => {
          const t0 = performance.now();
          const a = await signProvenance({ o, env, manifest, signer, startedOn, namespace, pr: metadata.pr });
          signing = { key: signer.describe, keyid: signer.keyid, signMs: a.signMs, totalMs: performance.now() - t0 };
          o.log(`${tag} signed provenance with ${signer.describe} in ${signing.totalMs.toFixed(1)} ms (facts + lock files + signature; signature ${a.signMs.toFixed(1)} ms)`);
          return a.bytes;
        }
      : undefined,
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
    if (keySpec) o.log(`${tag} dry run: would sign provenance with ${keySpec} and write ${result.uri}provenance.intoto.json`);
    o.log(`${tag} dry run: would write ${result.uri}manifest.json`);
  } else if (result.status === 'already-published') {
    o.log(`${tag} version ${manifest.version} is already published at ${result.uri} (identical sha256, nothing uploaded)`);
  } else {
    if (!signer) o.log(`${tag} unsigned: BUILDONCE_SIGNING_KEY is not set, version ${manifest.version} has no provenance (environments that require provenance will refuse it)`);
    o.log(`${tag} published version ${manifest.version} to ${result.uri}${namespace === 'preview' ? ' (preview namespace)' : ''}`);
  }
  if (result.status !== 'dry-run') await appendGithubOutput({ artifact_uri: result.uri, version: manifest.version }, env);
  return { ...result, version: manifest.version, namespace, ...(signing ? { signing } : {}) };
}

/** Builds and signs the version's in-toto statement (see @buildonce/provenance {@link attest}). */
async function signProvenance(a: { o: PublishBuildOptions; env: NodeJS.ProcessEnv; manifest: Manifest; signer: Signer; startedOn: Date; namespace: ArtifactNamespace; pr?: string }) {
  const { o, manifest } = a;
  const context = await buildContextFromEnv(o.workspaceRoot, a.env, a.startedOn);
  const deps = await resolvedDependencies({
    context,
    dirs: [o.workspaceRoot, ...(o.projectRoot && o.projectRoot !== o.workspaceRoot ? [o.projectRoot] : [])],
    toolchain: manifest.toolchain,
    runtime: manifest.runtime,
    architecture: manifest.architecture,
  });
  const image = (manifest as { image?: { digest?: string } }).image;
  return attest(
    {
      project: manifest.project,
      target: o.buildTarget ?? 'build',
      version: manifest.version,
      files: manifest.files,
      ...(image?.digest ? { imageDigest: image.digest } : {}),
      options: o.buildOptions ?? {},
      ...(context.ref ? { ref: context.ref } : {}),
      internalParameters: { ...context.internalParameters, kind: manifest.kind, namespace: a.namespace, ...(a.pr ? { pr: a.pr } : {}) },
      resolvedDependencies: deps,
      builderId: context.builderId,
      invocationId: context.invocationId,
      startedOn: a.startedOn,
      finishedOn: new Date(),
    },
    a.signer,
  );
}
