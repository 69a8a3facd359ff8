/** The server's environment configuration is invalid (the one ConfigError of buildonce); the message names the variable and the fix. */
export { ConfigError } from '@buildonce/errors';

/**
 * A PUT body was rejected while streaming. `reason` is safe to send to the client (text/plain) and to log.
 * - `not-gzip`: the body does not start with the gzip magic bytes
 * - `bad-archive`: the gzip or tar stream is malformed or truncated
 * - `unsafe-entry`: an entry has an absolute path, a `..` segment, or a link that escapes the archive
 */
export class BodyRejectedError extends Error {
  override name = 'BodyRejectedError';
  constructor(
    readonly kind: 'not-gzip' | 'bad-archive' | 'unsafe-entry',
    readonly reason: string,
  ) {
    super(reason);
  }
}

/** A PUT body grew past the configured limit (or past its own Content-Length) while streaming. */
export class BodyTooLargeError extends Error {
  override name = 'BodyTooLargeError';
  constructor(
    readonly limitBytes: number,
    readonly receivedBytes: number,
  ) {
    super(`body exceeds ${limitBytes} bytes (received at least ${receivedBytes})`);
  }
}

/** The client sent fewer bytes than its Content-Length (aborted upload). */
export class BodyIncompleteError extends Error {
  override name = 'BodyIncompleteError';
  constructor(
    readonly expectedBytes: number,
    readonly receivedBytes: number,
  ) {
    super(`body ended after ${receivedBytes} of ${expectedBytes} bytes`);
  }
}
