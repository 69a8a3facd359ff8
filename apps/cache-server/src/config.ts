import { tmpdir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { parseStoreUrl } from '@buildonce/store';
import { ConfigError } from './errors';
import { GITHUB_ISSUER, type OidcConfig } from './oidc';
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
  /** OIDC mode (GitHub Actions ID tokens as bearer tokens); absent when off */
  oidc?: OidcConfig;
  /** total bytes of entries kept before least-recently-used ones are evicted (directory: per process; S3: shared by replicas) */
  maxStoreBytes?: number;
  /** S3 store with a cap: how often each replica writes its access log and tries to evict, ms (`BUILDONCE_CACHE_LRU_CYCLE_SECONDS`, default 30 s) */
  lruCycleMs?: number;
  /** scrubber rate, MiB (2^20 bytes) of blobs re-hashed per second (`BUILDONCE_CACHE_SCRUB_MIB_PER_S`); 0 or absent = off */
  scrubMibPerSecond?: number;
  /** S3 store: upload buffers one replica holds at once, bytes (`BUILDONCE_CACHE_UPLOAD_BUFFER_MIB`, default 192 MiB) */
  uploadBufferBytes?: number;
}

/** Default `BUILDONCE_CACHE_UPLOAD_BUFFER_MIB`: what 9 concurrent multipart uploads of 5 MiB parts hold (4 parts each). */
export const DEFAULT_UPLOAD_BUFFER_MIB = 192;

/** Default `BUILDONCE_CACHE_SCRUB_MIB_PER_S`: 8 MiB/s, under 1 % of a core for sha256 (~1 GiB/s). */
export const DEFAULT_SCRUB_MIB_PER_S = 8;

/**
 * Reads the configuration from environment variables:
 * `PORT` (default 3000), `HOST` (default 0.0.0.0), `BUILDONCE_CACHE_TOKENS` (required, see parseTokens),
 * `BUILDONCE_CACHE_STORE` (a directory, `file:///abs`, or `s3://bucket/prefix`; default `./.buildonce/cache`
 * resolved against `cwd`), `BUILDONCE_CACHE_MAX_BYTES` (positive integer bytes, default 2 GiB),
 * `BUILDONCE_CACHE_SPOOL_DIR`, `BUILDONCE_CACHE_SHUTDOWN_TIMEOUT_MS` (default 30000),
 * `BUILDONCE_CACHE_MAX_STORE_BYTES` (LRU cap in bytes; unset = unbounded), `BUILDONCE_CACHE_LRU_CYCLE_SECONDS` (S3 cap:
 * access-log and eviction period, default 30), `BUILDONCE_CACHE_SCRUB_MIB_PER_S` (default 8; 0 = off),
 * `BUILDONCE_CACHE_UPLOAD_BUFFER_MIB` (S3: upload buffers per replica, default 192), and OIDC mode
 * (see parseOidc). With OIDC on, `BUILDONCE_CACHE_TOKENS` may be empty.
 * @throws ConfigError naming the variable and the fix
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): ServerConfig {
  const oidc = parseOidc(env);
  const store = parseCacheStore(env.BUILDONCE_CACHE_STORE, cwd);
  const maxStoreRaw = env.BUILDONCE_CACHE_MAX_STORE_BYTES?.trim();
  const maxStoreBytes = maxStoreRaw ? intVar(env, 'BUILDONCE_CACHE_MAX_STORE_BYTES', 0, 1, Number.MAX_SAFE_INTEGER) : undefined;
  return {
    oidc,
    maxStoreBytes,
    port: intVar(env, 'PORT', 3000, 0, 65535),
    host: env.HOST?.trim() || '0.0.0.0',
    maxBytes: intVar(env, 'BUILDONCE_CACHE_MAX_BYTES', DEFAULT_MAX_BYTES, 1, Number.MAX_SAFE_INTEGER),
    store,
    tokens: parseTokens(env.BUILDONCE_CACHE_TOKENS, { allowEmpty: !!oidc }),
    spoolDir: env.BUILDONCE_CACHE_SPOOL_DIR?.trim() || tmpdir(),
    shutdownTimeoutMs: intVar(env, 'BUILDONCE_CACHE_SHUTDOWN_TIMEOUT_MS', 30_000, 0, 3_600_000),
    lruCycleMs: intVar(env, 'BUILDONCE_CACHE_LRU_CYCLE_SECONDS', 30, 1, 3600) * 1000,
    scrubMibPerSecond: rateVar(env, 'BUILDONCE_CACHE_SCRUB_MIB_PER_S', DEFAULT_SCRUB_MIB_PER_S),
    uploadBufferBytes: intVar(env, 'BUILDONCE_CACHE_UPLOAD_BUFFER_MIB', DEFAULT_UPLOAD_BUFFER_MIB, 1, 1 << 20) * 1024 * 1024,
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

/**
 * OIDC mode, on when `BUILDONCE_CACHE_OIDC_AUDIENCE` is set: `BUILDONCE_CACHE_OIDC_ISSUER` (default GitHub's
 * `https://token.actions.githubusercontent.com`), `BUILDONCE_CACHE_OIDC_AUDIENCE`, `BUILDONCE_CACHE_OIDC_REPOSITORIES`
 * (required: comma list of `owner/name`), `BUILDONCE_CACHE_OIDC_TRUSTED_REFS` (default `refs/heads/main`),
 * `BUILDONCE_CACHE_OIDC_JWKS_URL` (default `<issuer>/.well-known/jwks`), `BUILDONCE_CACHE_OIDC_CLOCK_SKEW_SECONDS`
 * (default 60), `BUILDONCE_CACHE_OIDC_MAX_TOKEN_AGE_SECONDS` (default 3600: GitHub's ID tokens expire after
 * 5 minutes, a CI job's nx process keeps its token for the whole job; 0 honours `exp`).
 * @throws ConfigError naming the variable and the fix
 */
export function parseOidc(env: NodeJS.ProcessEnv): OidcConfig | undefined {
  const audience = env.BUILDONCE_CACHE_OIDC_AUDIENCE?.trim();
  const list = (v: string | undefined) =>
    (v ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  const repositories = list(env.BUILDONCE_CACHE_OIDC_REPOSITORIES);
  if (!audience) {
    if (repositories.length)
      throw new ConfigError('BUILDONCE_CACHE_OIDC_REPOSITORIES is set without BUILDONCE_CACHE_OIDC_AUDIENCE: set the audience your workflows request');
    return undefined;
  }
  if (!repositories.length)
    throw new ConfigError('BUILDONCE_CACHE_OIDC_REPOSITORIES is empty: set a comma list of owner/name repositories whose jobs may use the cache');
  for (const r of repositories) {
    if (!/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(r)) throw new ConfigError(`BUILDONCE_CACHE_OIDC_REPOSITORIES item "${r}" is not owner/name`);
  }
  const issuer = (env.BUILDONCE_CACHE_OIDC_ISSUER?.trim() || GITHUB_ISSUER).replace(/\/+$/, '');
  const jwksUrl = env.BUILDONCE_CACHE_OIDC_JWKS_URL?.trim() || `${issuer}/.well-known/jwks`;
  for (const [name, v] of [
    ['BUILDONCE_CACHE_OIDC_ISSUER', issuer],
    ['BUILDONCE_CACHE_OIDC_JWKS_URL', jwksUrl],
  ] as const) {
    if (!/^https?:\/\/[^\s]+$/.test(v)) throw new ConfigError(`${name}="${v}" is not an http(s) URL`);
  }
  const trustedRefs = list(env.BUILDONCE_CACHE_OIDC_TRUSTED_REFS);
  for (const r of trustedRefs)
    if (!r.startsWith('refs/')) throw new ConfigError(`BUILDONCE_CACHE_OIDC_TRUSTED_REFS item "${r}" is not a full ref such as refs/heads/main`);
  return {
    issuer,
    audience,
    jwksUrl,
    repositories,
    trustedRefs: trustedRefs.length ? trustedRefs : ['refs/heads/main'],
    clockSkewSeconds: intVar(env, 'BUILDONCE_CACHE_OIDC_CLOCK_SKEW_SECONDS', 60, 0, 600),
    maxTokenAgeSeconds: intVar(env, 'BUILDONCE_CACHE_OIDC_MAX_TOKEN_AGE_SECONDS', 3600, 0, 6 * 3600),
  };
}

/** A non-negative decimal (`0`, `8`, `0.5`), at most 100000. */
function rateVar(env: NodeJS.ProcessEnv, name: string, def: number): number {
  const raw = env[name]?.trim();
  if (!raw) return def;
  if (!/^\d+(\.\d+)?$/.test(raw)) throw new ConfigError(`${name}="${raw}" is not a non-negative number (MiB per second; 0 turns it off)`);
  const n = Number(raw);
  if (n > 100_000) throw new ConfigError(`${name}=${raw} is out of range 0..100000`);
  return n;
}

function intVar(env: NodeJS.ProcessEnv, name: string, def: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (!raw) return def;
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${name}="${raw}" is not a non-negative integer`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new ConfigError(`${name}=${raw} is out of range ${min}..${max}`);
  return n;
}
