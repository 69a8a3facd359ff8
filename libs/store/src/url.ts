import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { StoreConfigError } from './errors';

/** A parsed store location. `prefix` never starts or ends with `/` (may be empty). */
export type StoreLocation =
  | { kind: 's3'; bucket: string; prefix: string; url: string }
  | { kind: 'file'; root: string; url: string };

/** Where the embedded default store lives, relative to the workspace root. */
export const DEFAULT_STORE_DIR = '.buildonce/store';

/**
 * Parses `s3://bucket/prefix` or `file:///abs/path` (a bare absolute path is accepted as file).
 * Bucket names follow the S3 naming rules (3–63 chars, lowercase, digits, `.`, `-`).
 * @throws StoreConfigError with a one-line message naming the URL and the fix
 */
export function parseStoreUrl(raw: string): StoreLocation {
  const url = raw.trim();
  const hint = 'use s3://<bucket>/<prefix> or file:///absolute/path';
  if (!url) throw new StoreConfigError(`store URL is empty: ${hint}`);
  if (url.startsWith('s3://')) {
    const rest = url.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash === -1 ? rest : rest.slice(0, slash);
    const prefix = (slash === -1 ? '' : rest.slice(slash + 1)).replace(/^\/+|\/+$/g, '');
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
      throw new StoreConfigError(`store URL "${raw}" has an invalid S3 bucket name "${bucket}": ${hint}`);
    }
    if (prefix.split('/').some((p) => p === '..' || p === '.')) {
      throw new StoreConfigError(`store URL "${raw}" has "." or ".." in its prefix: ${hint}`);
    }
    return { kind: 's3', bucket, prefix, url: `s3://${bucket}${prefix ? '/' + prefix : ''}` };
  }
  if (url.startsWith('file://')) {
    let root: string;
    try {
      root = fileURLToPath(url);
    } catch {
      throw new StoreConfigError(`store URL "${raw}" is not a valid file URL: ${hint}`);
    }
    return { kind: 'file', root, url: pathToFileURL(root).href };
  }
  if (isAbsolute(url)) return { kind: 'file', root: resolve(url), url: pathToFileURL(resolve(url)).href };
  throw new StoreConfigError(`store URL "${raw}" is not supported: ${hint}`);
}

/**
 * Chooses the store: explicit option, else `BUILDONCE_STORE`, else the embedded default
 * `file://<workspaceRoot>/.buildonce/store`.
 * @throws StoreConfigError for a malformed URL
 */
export function resolveStoreLocation(opts: { store?: string; env?: NodeJS.ProcessEnv; workspaceRoot: string }): StoreLocation {
  const env = opts.env ?? process.env;
  const chosen = opts.store ?? env.BUILDONCE_STORE;
  if (chosen !== undefined && chosen !== '') return parseStoreUrl(chosen);
  return parseStoreUrl(pathToFileURL(join(opts.workspaceRoot, DEFAULT_STORE_DIR)).href);
}
