import { BuildonceError } from '@buildonce/errors';

/**
 * A version already exists in the store with different bytes. Nothing was changed.
 * Fields give the key and both checksums (hex sha256) so the message can be acted on.
 */
export class ArtifactConflictError extends BuildonceError {
  override name = 'ArtifactConflictError';
  constructor(
    readonly uri: string,
    readonly storedSha256: string | undefined,
    readonly newSha256: string,
  ) {
    super(
      `ArtifactConflictError: ${uri} already exists with sha256 ${storedSha256 ?? '(unknown)'} but this build produced ${newSha256}; ` +
        `a version is immutable — rebuild from clean sources (the build is not reproducible) or investigate who wrote it`,
    );
  }
}

/** The store cannot be reached or used: missing bucket, missing credentials, permissions, I/O. */
export class StoreAccessError extends BuildonceError {
  override name = 'StoreAccessError';
}

/** A stored object is missing or does not match its manifest entry (size or sha256). */
export class ArtifactIntegrityError extends BuildonceError {
  override name = 'ArtifactIntegrityError';
}

/** The artifact (or one of its files) is not in the store. */
export class ArtifactNotFoundError extends BuildonceError {
  override name = 'ArtifactNotFoundError';
}

/**
 * A region's store holds an object under a version's key whose size or sha256 differs from the verified
 * manifest (a tampered or foreign replica). Never overwritten, never deployed.
 */
export class RegionReplicaMismatchError extends BuildonceError {
  override name = 'RegionReplicaMismatchError';
}

/** A region's store cannot serve that region: its bucket is in another region (Lambda reads code only from its own region). */
export class RegionStoreError extends BuildonceError {
  override name = 'RegionStoreError';
}
