import type { KMSClient } from '@aws-sdk/client-kms';
import { awsClients } from '@buildonce/aws';
import { resolveVerificationKeys, verifyProvenance, type ProvenanceRecord, type ProvenanceVerdict } from '@buildonce/provenance';
import { provenanceKey, type BlobStore } from '@buildonce/store';
import type { VerifiedArtifact } from './artifact';
import type { ResolvedEnvironment } from './config';

export interface CheckProvenanceRequest {
  store: BlobStore;
  project: string;
  version: string;
  environment: ResolvedEnvironment;
  /** the located, verified artifact (its stored files are the subjects to match) */
  artifact: VerifiedArtifact;
  log: (line: string) => void;
  /** KMS client for `kms:` verification keys (default: from `@buildonce/aws` and process.env) */
  kms?: () => KMSClient;
}

/**
 * The provenance step of a promotion (issue 16), run after the artifact is located and verified and
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
  const keys = await resolveVerificationKeys(policy.keys, { kms: r.kms ?? (() => awsClients().kms()) });
  const image = (r.artifact.stored.manifest as { image?: { digest?: string } }).image;
  const v: ProvenanceVerdict = verifyProvenance({
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
  if (v.record.verified) {
    r.log(`provenance verified: signed by ${v.record.key}, builder ${v.record.builder}${v.record.ref ? `, ref ${v.record.ref}` : ''}${v.record.commit ? `, commit ${v.record.commit.slice(0, 12)}` : ''}`);
  } else {
    r.log(`provenance: version ${r.version} is unsigned (${r.environment.name} does not require provenance)`);
  }
  return v.record;
}
