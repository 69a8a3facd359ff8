import type { StoredManifest } from '@buildonce/artifact';
import type { ProvenanceRecord } from '@buildonce/provenance';
import { readStoredManifest, verifyArtifact, versionPrefix, type ArtifactNamespace, type BlobStore } from '@buildonce/store';
import type { ResolvedEnvironment } from '@buildonce/config';
import { UntrustedArtifactError } from '@buildonce/errors';
import type { ProjectName, Version } from '@buildonce/values';

/** A version found in the store and verified (manifest present, every file's size and sha256 match). */
export interface VerifiedArtifact {
  namespace: ArtifactNamespace;
  stored: StoredManifest;
  /** URI of the version's folder */
  uri: string;
  /** what the environment's provenance check found (set by checkProvenance before the policy check) */
  provenance?: ProvenanceRecord;
}

/**
 * Finds and verifies the artifact an environment may run (docs/architecture.md invariant 6):
 * chain environments accept only the trusted namespace, published by a trusted builder; preview
 * environments take the trusted artifact when there is one, else the preview one.
 * @throws UntrustedArtifactError (only in preview / untrusted publisher); ArtifactNotFoundError;
 *   ArtifactIntegrityError naming the first file whose size or sha256 no longer matches
 */
export async function locateArtifact(store: BlobStore, project: ProjectName, version: Version, env: ResolvedEnvironment): Promise<VerifiedArtifact> {
  const trusted = await readStoredManifest(store, project, version, 'trusted');
  if (env.kind === 'chain') {
    if (!trusted) {
      const preview = await readStoredManifest(store, project, version, 'preview');
      if (preview) {
        throw new UntrustedArtifactError(
          `version ${version} of ${project} is only in the preview namespace (${store.uriOf(versionPrefix(project, version, 'preview'))}): ${env.name} accepts only artifacts published by a trusted build (publish from main)`,
        );
      }
    } else if (trusted.publish.trusted === false) {
      throw new UntrustedArtifactError(
        `version ${version} of ${project} was published by an untrusted builder (${trusted.publish.builder}): ${env.name} accepts only trusted artifacts`,
      );
    }
    const stored = await verifyArtifact(store, project, version, 'trusted');
    return { namespace: 'trusted', stored, uri: store.uriOf(versionPrefix(project, version, 'trusted')) };
  }
  const namespace: ArtifactNamespace = trusted ? 'trusted' : (await readStoredManifest(store, project, version, 'preview')) ? 'preview' : 'trusted';
  const stored = await verifyArtifact(store, project, version, namespace);
  return { namespace, stored, uri: store.uriOf(versionPrefix(project, version, namespace)) };
}
