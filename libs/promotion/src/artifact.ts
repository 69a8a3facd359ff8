import type { StoredManifest } from '@buildonce/artifact';
import type { ProvenanceRecord } from '@buildonce/provenance';
import { readStoredManifest, verifyArtifactFiles, versionPrefix, type ArtifactNamespace, type BlobStore, type VerifiedComposite } from '@buildonce/store';
import type { ResolvedEnvironment } from '@buildonce/config';
import { UntrustedArtifactError } from '@buildonce/errors';
import type { ProjectName, Version } from '@buildonce/values';
import { trustGate } from './gates/trust';

/** A version found in the store and verified (manifest present, every file's size and sha256 match). */
export interface VerifiedArtifact {
  namespace: ArtifactNamespace;
  stored: StoredManifest;
  /** file name → composite SHA256 of each multipart file's verified bytes (region copies are checked against it) */
  composites: Readonly<Record<string, VerifiedComposite>>;
  /** URI of the version's folder */
  uri: string;
  /** what the environment's provenance check found (set by checkProvenance before the policy check) */
  provenance?: ProvenanceRecord;
}

/**
 * Finds and verifies the artifact an environment may run (docs/architecture.md invariant 6): the
 * `trust` gate (gates/trust.ts) lets chain environments take only the trusted namespace, published by a
 * trusted builder, before any byte is verified; preview environments take the trusted artifact when there is one, else the preview one.
 * @throws UntrustedArtifactError (only in preview / untrusted publisher); ArtifactNotFoundError;
 *   ArtifactIntegrityError naming the first file whose size or sha256 no longer matches
 */
export async function locateArtifact(store: BlobStore, project: ProjectName, version: Version, env: ResolvedEnvironment): Promise<VerifiedArtifact> {
  const trusted = await readStoredManifest(store, project, version, 'trusted');
  if (env.kind === 'chain') {
    const previewUri =
      !trusted && (await readStoredManifest(store, project, version, 'preview')) ? store.uriOf(versionPrefix(project, version, 'preview')) : undefined;
    const trust = trustGate({ environment: env, project, version, trusted, previewUri });
    if (!trust.ok) throw new UntrustedArtifactError(trust.reason);
    const { stored, composites } = await verifyArtifactFiles(store, project, version, 'trusted');
    return { namespace: 'trusted', stored, composites, uri: store.uriOf(versionPrefix(project, version, 'trusted')) };
  }
  const namespace: ArtifactNamespace = trusted ? 'trusted' : (await readStoredManifest(store, project, version, 'preview')) ? 'preview' : 'trusted';
  const { stored, composites } = await verifyArtifactFiles(store, project, version, namespace);
  return { namespace, stored, composites, uri: store.uriOf(versionPrefix(project, version, namespace)) };
}
