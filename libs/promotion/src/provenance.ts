import type { KMSClient } from '@aws-sdk/client-kms';
import { performance } from 'node:perf_hooks';
import type { Manifest } from '@buildonce/artifact';
import {
  attest,
  buildContextFromEnv,
  lockFileDigests,
  resolvedDependencies,
  type Signer,
  inspectEnvelope,
  ProvenanceRefusedError,
  resolveVerificationKeys,
  type ProvenanceRecord,
  type StatementFacts,
} from '@buildonce/provenance';
import { provenanceKey, readStoredManifest, verifyArtifact, type ArtifactNamespace, type BlobStore } from '@buildonce/store';
import { locateArtifact, type VerifiedArtifact } from './artifact';
import { provenanceGate } from './gates/provenance';
import { resolveEnvironment, type BuildonceConfig, type ResolvedEnvironment } from '@buildonce/config';
import { UntrustedArtifactError } from '@buildonce/errors';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';

export interface CheckProvenanceRequest {
  store: BlobStore;
  project: ProjectName;
  version: Version;
  environment: ResolvedEnvironment;
  /** the located, verified artifact (its stored files are the subjects to match) */
  artifact: VerifiedArtifact;
  log: (line: string) => void;
  /** KMS client for `kms:` verification keys: the command's AWS clients (libs/aws, built once by libs/commands) */
  kms: () => KMSClient;
}

/**
 * The provenance step of a promotion, run after the artifact is located and verified and
 * before the promotion policy: with an environment `provenance` policy, reads the version's
 * `provenance.intoto.json`, resolves the allowed keys (PEM / file / KMS `GetPublicKey`) and verifies
 * signature, statement, subjects against the stored files, builder and ref
 * (see @buildonce/provenance verifyProvenance). Without a policy, only records whether the version is
 * signed (one HEAD).
 * @returns what the history entry records
 * @throws ProvenanceRefusedError naming the failed rule; ProvenanceError for unusable keys
 */
export async function checkProvenance(r: CheckProvenanceRequest): Promise<ProvenanceRecord> {
  const key = provenanceKey(r.project, r.version, r.artifact.namespace);
  const policy = r.environment.kind === 'chain' ? r.environment.provenance : undefined;
  if (!policy) return { signed: !!(await r.store.head(key)), verified: false, rules: [] };
  const got = await r.store.getBytes(key);
  const keys = await resolveVerificationKeys(policy.keys, { kms: r.kms });
  const image = (r.artifact.stored.manifest as { image?: { digest?: string } }).image;
  // the provenance gate (gates/provenance.ts): pure, over the envelope, the stored files and the resolved keys
  const v = provenanceGate({
    project: r.project,
    version: r.version,
    environment: r.environment.name,
    envelope: got?.bytes,
    source: r.store.uriOf(key),
    files: r.artifact.stored.manifest.files,
    ...(image?.digest ? { imageDigest: image.digest } : {}),
    policy,
    keys,
  });
  if (!v.ok) throw v.error;
  if (v.record.verified) {
    r.log(
      `provenance verified: signed by ${v.record.key}, builder ${v.record.builder}${v.record.ref ? `, ref ${v.record.ref}` : ''}${v.record.commit ? `, commit ${v.record.commit.slice(0, 12)}` : ''}`,
    );
  } else {
    r.log(`provenance: version ${r.version} is unsigned (${r.environment.name} does not require provenance)`);
  }
  return v.record;
}

/** One environment's verdict on a version's provenance. */
export type ProvenanceVerdictRow =
  | { environment: EnvironmentName; status: 'verified' | 'unsigned' | 'not-checked'; record?: ProvenanceRecord }
  | { environment: EnvironmentName; status: 'refused'; rule: string; reason: string };

/** What `buildonce verify` reports. */
export interface VersionProvenanceReport {
  project: ProjectName;
  version: Version;
  namespace: ArtifactNamespace;
  /** URI of `provenance.intoto.json` */
  uri: string;
  signed: boolean;
  /** the statement's facts (unverified unless a verdict says so); absent when unsigned or unreadable */
  facts?: StatementFacts;
  /** keyids named by the envelope's signatures */
  keyids: string[];
  /** why the envelope could not be read (malformed) */
  error?: string;
  verdicts: ProvenanceVerdictRow[];
  /** true when every verdict passed (no refusal, nothing unreadable) */
  ok: boolean;
}

/**
 * `buildonce verify <project> <version> [--env <env>]`: reads the version (every file re-verified) and
 * its provenance, extracts the statement's facts, and verifies it against the policy of `env`, or
 * without `env` of every chain environment that has a `provenance` policy (environments without one
 * say `not-checked`). Changes nothing.
 * @throws ArtifactNotFoundError / ArtifactIntegrityError / UntrustedArtifactError (the version itself),
 *   UnknownEnvironmentError, ProvenanceError for unusable keys
 */
export async function inspectVersionProvenance(o: {
  store: BlobStore;
  config: BuildonceConfig;
  project: ProjectName;
  version: Version;
  env?: EnvironmentName;
  /** KMS client for `kms:` verification keys (the command's AWS clients) */
  kms: () => KMSClient;
}): Promise<VersionProvenanceReport> {
  const envs: ResolvedEnvironment[] = o.env
    ? [resolveEnvironment(o.config, o.env)]
    : o.config.environments.filter((e) => e.provenance).map((e) => ({ kind: 'chain' as const, ...e }));
  const trusted = await readStoredManifest(o.store, o.project, o.version, 'trusted');
  const namespace: ArtifactNamespace = trusted || !(await readStoredManifest(o.store, o.project, o.version, 'preview')) ? 'trusted' : 'preview';
  await verifyArtifact(o.store, o.project, o.version, namespace);
  const key = provenanceKey(o.project, o.version, namespace);
  const got = await o.store.getBytes(key);
  const report: VersionProvenanceReport = {
    project: o.project,
    version: o.version,
    namespace,
    uri: o.store.uriOf(key),
    signed: !!got,
    keyids: [],
    verdicts: [],
    ok: true,
  };
  if (got) {
    try {
      const i = inspectEnvelope(got.bytes, report.uri);
      report.facts = i.facts;
      report.keyids = i.envelope.signatures.map((s) => s.keyid ?? '?');
    } catch (e) {
      report.error = (e as Error).message.split('\n')[0];
      report.ok = false;
    }
  }
  for (const environment of envs) {
    if (environment.kind !== 'chain' || !environment.provenance) {
      report.verdicts.push({ environment: environment.name, status: 'not-checked' });
      continue;
    }
    try {
      const artifact = await locateArtifact(o.store, o.project, o.version, environment);
      const record = await checkProvenance({ store: o.store, project: o.project, version: o.version, environment, artifact, log: () => undefined, kms: o.kms });
      report.verdicts.push({ environment: environment.name, status: record.verified ? 'verified' : 'unsigned', record });
    } catch (e) {
      if (!(e instanceof ProvenanceRefusedError || e instanceof UntrustedArtifactError)) throw e;
      report.verdicts.push({
        environment: environment.name,
        status: 'refused',
        rule: e instanceof ProvenanceRefusedError ? e.rule : 'trusted',
        reason: e.message,
      });
      report.ok = false;
    }
  }
  return report;
}

/** Human-readable lines of a {@link VersionProvenanceReport} (facts, then one verdict line per environment). */
export function renderProvenanceReport(r: VersionProvenanceReport): string[] {
  const lines = [`${r.project}@${r.version} (${r.namespace}) provenance: ${r.signed ? r.uri : 'none (published unsigned)'}`];
  if (r.error) lines.push(`  unreadable: ${r.error}`);
  const f = r.facts;
  if (f) {
    lines.push(`  builder     ${f.builder}`);
    if (f.ref) lines.push(`  ref         ${f.ref}`);
    if (f.commit) lines.push(`  commit      ${f.commit}${f.dirty ? ' (built from a work tree with uncommitted changes)' : ''}`);
    if (f.invocationId) lines.push(`  invocation  ${f.invocationId}`);
    if (f.startedOn || f.finishedOn) lines.push(`  built       ${f.startedOn ?? '?'} → ${f.finishedOn ?? '?'}`);
    lines.push(`  target      ${f.project}:${f.target} version ${f.version}`);
    lines.push(`  signed by   ${r.keyids.join(', ') || '(no signatures)'}`);
    for (const s of f.subjects) lines.push(`  subject     ${s.name} sha256:${s.sha256 ?? '?'}`);
  }
  if (!r.verdicts.length) lines.push('no environment has a provenance policy: pass --env=<env> or add provenance to an environment in buildonce.json');
  for (const v of r.verdicts) {
    if (v.status === 'refused') lines.push(`${v.environment}: REFUSED (${v.rule}): ${v.reason}`);
    else if (v.status === 'verified') lines.push(`${v.environment}: verified (key ${v.record?.key}; rules ${v.record?.rules.join(', ')})`);
    else if (v.status === 'unsigned') lines.push(`${v.environment}: accepted unsigned (provenance not required there)`);
    else lines.push(`${v.environment}: not checked (no provenance policy)`);
  }
  return lines;
}

/** What signing added to a publish: the key used and the time spent (ms). */
export interface PublishSigning {
  /** `kms:<id>` or `file:<path>` */
  key: string;
  keyid: string;
  /** statement + DSSE signature, ms */
  signMs: number;
  /** everything provenance added to the publish: build facts (git), lock file digests, statement, signature; ms */
  totalMs: number;
}

/**
 * Builds and signs a version's provenance at publish time (see @buildonce/provenance attest):
 * builder, invocation, ref and commit from the CI environment or git; lock files of the workspace and
 * project roots; the manifest's toolchain; subjects = the manifest's files (+ image digest).
 * @returns the DSSE envelope bytes, timings (ms) and, for a dirty work tree, how many paths differ from
 *   the commit (the statement records it: `dirty` on the source dependency)
 * @throws ProvenanceError from the signer
 */
export async function signPublishedVersion(a: {
  workspaceRoot: string;
  projectRoot?: string;
  env: NodeJS.ProcessEnv;
  manifest: Manifest;
  signer: Signer;
  startedOn: Date;
  namespace: ArtifactNamespace;
  pr?: string;
  buildTarget?: string;
  buildOptions?: Record<string, unknown>;
}): Promise<{ bytes: Buffer; signMs: number; totalMs: number; uncommittedPaths?: number }> {
  const t0 = performance.now();
  const { manifest } = a;
  const [context, lockFiles] = await Promise.all([
    buildContextFromEnv(a.workspaceRoot, a.env, a.startedOn),
    lockFileDigests([a.workspaceRoot, ...(a.projectRoot && a.projectRoot !== a.workspaceRoot ? [a.projectRoot] : [])]),
  ]);
  const deps = resolvedDependencies({
    context,
    lockFiles,
    toolchain: manifest.toolchain,
    runtime: manifest.runtime,
    architecture: manifest.architecture,
  });
  const image = (manifest as { image?: { digest?: string } }).image;
  const att = await attest(
    {
      project: manifest.project,
      target: a.buildTarget ?? 'build',
      version: manifest.version,
      files: manifest.files,
      ...(image?.digest ? { imageDigest: image.digest } : {}),
      options: a.buildOptions ?? {},
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
  return {
    bytes: att.bytes,
    signMs: att.signMs,
    totalMs: performance.now() - t0,
    ...(context.uncommittedPaths ? { uncommittedPaths: context.uncommittedPaths } : {}),
  };
}
