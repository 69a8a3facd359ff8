import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ConfigError } from '@buildonce/errors';

/** A parsed store location. `prefix` never starts or ends with `/` (may be empty). */
export type StoreLocation = { kind: 's3'; bucket: string; prefix: string; url: string } | { kind: 'file'; root: string; url: string };

/** Where the embedded default store lives, relative to the workspace root. */
export const DEFAULT_STORE_DIR = '.buildonce/store';

/**
 * Parses `s3://bucket/prefix` or `file:///abs/path` (a bare absolute path is accepted as file).
 * Bucket names follow the S3 naming rules (3–63 chars, lowercase, digits, `.`, `-`).
 * @throws ConfigError with a one-line message naming the URL and the fix
 */
export function parseStoreUrl(raw: string): StoreLocation {
  const url = raw.trim();
  const hint = 'use s3://<bucket>/<prefix> or file:///absolute/path';
  if (!url) throw new ConfigError(`store URL is empty: ${hint}`);
  if (url.startsWith('s3://')) {
    const rest = url.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash === -1 ? rest : rest.slice(0, slash);
    const prefix = (slash === -1 ? '' : rest.slice(slash + 1)).replace(/^\/+|\/+$/g, '');
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
      throw new ConfigError(`store URL "${raw}" has an invalid S3 bucket name "${bucket}": ${hint}`);
    }
    if (prefix.split('/').some((p) => p === '..' || p === '.')) {
      throw new ConfigError(`store URL "${raw}" has "." or ".." in its prefix: ${hint}`);
    }
    return { kind: 's3', bucket, prefix, url: `s3://${bucket}${prefix ? '/' + prefix : ''}` };
  }
  if (url.startsWith('file://')) {
    let root: string;
    try {
      root = fileURLToPath(url);
    } catch {
      throw new ConfigError(`store URL "${raw}" is not a valid file URL: ${hint}`);
    }
    return { kind: 'file', root, url: pathToFileURL(root).href };
  }
  if (isAbsolute(url)) return { kind: 'file', root: resolve(url), url: pathToFileURL(resolve(url)).href };
  throw new ConfigError(`store URL "${raw}" is not supported: ${hint}`);
}

/**
 * Chooses the store: THE one precedence rule of buildonce (every command resolves its store here):
 * 1. `option` (`--store` of an executor or the CLI),
 * 2. `BUILDONCE_STORE` in `env`,
 * 3. `configured` (buildonce.json `store`),
 * 4. the embedded default `file://<workspaceRoot>/.buildonce/store`.
 * Empty strings count as unset.
 * @returns the parsed location and which of the four it came from
 * @throws ConfigError for a malformed URL (naming where it came from)
 */
export function resolveStoreLocation(o: {
  option?: string;
  env?: NodeJS.ProcessEnv;
  configured?: string;
  workspaceRoot: string;
}): StoreLocation & { source: StoreSource } {
  const env = o.env ?? process.env;
  const candidates: [StoreSource, string | undefined][] = [
    ['--store', o.option],
    ['BUILDONCE_STORE', env.BUILDONCE_STORE],
    ['buildonce.json', o.configured],
  ];
  for (const [source, raw] of candidates) {
    if (raw === undefined || raw.trim() === '') continue;
    try {
      return { ...parseStoreUrl(raw), source };
    } catch (e) {
      throw new ConfigError(`${source}: ${(e as Error).message}`);
    }
  }
  return { ...parseStoreUrl(pathToFileURL(join(o.workspaceRoot, DEFAULT_STORE_DIR)).href), source: 'default' };
}

/** Where a resolved store location came from. */
export type StoreSource = '--store' | 'BUILDONCE_STORE' | 'buildonce.json' | 'default';
