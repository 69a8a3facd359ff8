import { tmpdir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { parseStoreUrl } from '@buildonce/store';
import { ConfigError } from './errors';
import { parseTokens, type TokenTable } from './tokens';

/** Default `BUILDONCE_CACHE_MAX_BYTES`: 2 GiB. */
export const DEFAULT_MAX_BYTES = 2 * 1024 ** 3;
/** Default storage directory, relative to the working directory. */
export const DEFAULT_STORE_DIR = './.buildonce/cache';

/** Where entries are stored. */
export type CacheStoreSpec = { kind: 'dir'; root: string; url: string } | { kind: 's3'; bucket: string; prefix: string; url: string };

/** Everything the server reads from its environment. */
export interface ServerConfig {
  port: number;
  host: string;
  /** largest accepted PUT body, bytes */
  maxBytes: number;
  store: CacheStoreSpec;
  tokens: TokenTable;
  /** where S3-backed GETs spool bodies while verifying their sha256 (`BUILDONCE_CACHE_SPOOL_DIR`, default OS temp) */
  spoolDir: string;
  /** how long a SIGTERM waits for in-flight requests before exiting anyway, ms */
  shutdownTimeoutMs: number;
}

/**
 * Reads the configuration from environment variables:
 * `PORT` (default 3000), `HOST` (default 0.0.0.0), `BUILDONCE_CACHE_TOKENS` (required, see parseTokens),
 * `BUILDONCE_CACHE_STORE` (a directory, `file:///abs`, or `s3://bucket/prefix`; default `./.buildonce/cache`
 * resolved against `cwd`), `BUILDONCE_CACHE_MAX_BYTES` (positive integer bytes, default 2 GiB),
 * `BUILDONCE_CACHE_SPOOL_DIR`, `BUILDONCE_CACHE_SHUTDOWN_TIMEOUT_MS` (default 30000).
 * @throws ConfigError naming the variable and the fix
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): ServerConfig {
  return {
    port: intVar(env, 'PORT', 3000, 0, 65535),
    host: env.HOST?.trim() || '0.0.0.0',
    maxBytes: intVar(env, 'BUILDONCE_CACHE_MAX_BYTES', DEFAULT_MAX_BYTES, 1, Number.MAX_SAFE_INTEGER),
    store: parseCacheStore(env.BUILDONCE_CACHE_STORE, cwd),
    tokens: parseTokens(env.BUILDONCE_CACHE_TOKENS),
    spoolDir: env.BUILDONCE_CACHE_SPOOL_DIR?.trim() || tmpdir(),
    shutdownTimeoutMs: intVar(env, 'BUILDONCE_CACHE_SHUTDOWN_TIMEOUT_MS', 30_000, 0, 3_600_000),
  };
}

/**
 * Parses `BUILDONCE_CACHE_STORE`: `s3://bucket/prefix`, `file:///abs/path`, or a directory path (relative paths
 * resolve against `cwd`). Empty or unset means `./.buildonce/cache`.
 * @throws ConfigError for a malformed URL
 */
export function parseCacheStore(raw: string | undefined, cwd: string): CacheStoreSpec {
  const value = raw?.trim() || DEFAULT_STORE_DIR;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    try {
      const loc = parseStoreUrl(value);
      return loc.kind === 's3' ? { kind: 's3', bucket: loc.bucket, prefix: loc.prefix, url: loc.url } : { kind: 'dir', root: loc.root, url: loc.url };
    } catch (e) {
      if (e instanceof ConfigError) throw new ConfigError(`BUILDONCE_CACHE_STORE: ${e.message}`);
      throw e;
    }
  }
  const root = isAbsolute(value) ? resolve(value) : resolve(cwd, value);
  return { kind: 'dir', root, url: root };
}

function intVar(env: NodeJS.ProcessEnv, name: string, def: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (!raw) return def;
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${name}="${raw}" is not a non-negative integer`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new ConfigError(`${name}=${raw} is out of range ${min}..${max}`);
  return n;
}
