import { BuildonceError } from '@buildonce/errors';

/** A registry answered with an unexpected status or an OCI error body; the message names the request and the fix. */
export class RegistryError extends BuildonceError {
  override name = 'RegistryError';
  constructor(
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The registry refused our credentials (401/403 after the token dance). */
export class RegistryAuthError extends RegistryError {
  override name = 'RegistryAuthError';
}

/** A manifest or blob is not in the registry. */
export class ImageNotFoundError extends BuildonceError {
  override name = 'ImageNotFoundError';
}

/** An image reference or option is malformed (base image without a digest, bad platform, bad registry). */
export class ImageConfigError extends BuildonceError {
  override name = 'ImageConfigError';
}

/** Bytes read from a registry or an image layout do not match their digest. */
export class ImageIntegrityError extends BuildonceError {
  override name = 'ImageIntegrityError';
}
