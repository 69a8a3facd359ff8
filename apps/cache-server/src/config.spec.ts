import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_BYTES, loadConfig, parseCacheStore } from './config';
import { ConfigError } from './errors';
import { accessFromClaims } from './oidc';

const tokens = { BUILDONCE_CACHE_TOKENS: 'tok-123:read-write' };

describe('loadConfig', () => {
  it('applies defaults: port 3000, 0.0.0.0, 2 GiB, ./.buildonce/cache under cwd', () => {
    const c = loadConfig({ ...tokens }, '/srv/app');
    expect(c.port).toBe(3000);
    expect(c.host).toBe('0.0.0.0');
    expect(c.maxBytes).toBe(DEFAULT_MAX_BYTES);
    expect(DEFAULT_MAX_BYTES).toBe(2147483648);
    expect(c.store).toEqual({ kind: 'dir', root: '/srv/app/.buildonce/cache', url: '/srv/app/.buildonce/cache' });
    expect(c.tokens.size).toBe(1);
  });

  it('reads BUILDONCE_CACHE_SCRUB_MIB_PER_S: default 8, decimals, 0 turns the scrubber off', () => {
    expect(loadConfig({ ...tokens }, '/').scrubMibPerSecond).toBe(8);
    expect(loadConfig({ ...tokens, BUILDONCE_CACHE_SCRUB_MIB_PER_S: '0.5' }, '/').scrubMibPerSecond).toBe(0.5);
    expect(loadConfig({ ...tokens, BUILDONCE_CACHE_SCRUB_MIB_PER_S: '0' }, '/').scrubMibPerSecond).toBe(0);
  });

  it('reads BUILDONCE_CACHE_UPLOAD_BUFFER_MIB in MiB: default 192', () => {
    expect(loadConfig({ ...tokens }, '/').uploadBufferBytes).toBe(192 * 1024 * 1024);
    expect(loadConfig({ ...tokens, BUILDONCE_CACHE_UPLOAD_BUFFER_MIB: '64' }, '/').uploadBufferBytes).toBe(64 * 1024 * 1024);
  });

  it('reads PORT, HOST and BUILDONCE_CACHE_MAX_BYTES', () => {
    const c = loadConfig({ ...tokens, PORT: '8080', HOST: '127.0.0.1', BUILDONCE_CACHE_MAX_BYTES: '1048576' }, '/');
    expect([c.port, c.host, c.maxBytes]).toEqual([8080, '127.0.0.1', 1048576]);
  });

  it.each([
    [{ PORT: 'eighty' }, /PORT/],
    [{ PORT: '70000' }, /PORT=70000 is out of range/],
    [{ BUILDONCE_CACHE_MAX_BYTES: '0' }, /BUILDONCE_CACHE_MAX_BYTES/],
    [{ BUILDONCE_CACHE_MAX_BYTES: '2G' }, /not a non-negative integer/],
    [{ BUILDONCE_CACHE_SCRUB_MIB_PER_S: 'fast' }, /BUILDONCE_CACHE_SCRUB_MIB_PER_S="fast" is not a non-negative number/],
    [{ BUILDONCE_CACHE_SCRUB_MIB_PER_S: '-1' }, /BUILDONCE_CACHE_SCRUB_MIB_PER_S/],
    [{ BUILDONCE_CACHE_STORE: 's3://Bad_Bucket/x' }, /BUILDONCE_CACHE_STORE: .*invalid S3 bucket name/],
    [{ BUILDONCE_CACHE_STORE: 'gs://bucket/x' }, /not supported/],
    [{ BUILDONCE_CACHE_UPLOAD_BUFFER_MIB: '0' }, /BUILDONCE_CACHE_UPLOAD_BUFFER_MIB=0 is out of range/],
    [{ BUILDONCE_CACHE_UPLOAD_BUFFER_MIB: 'lots' }, /BUILDONCE_CACHE_UPLOAD_BUFFER_MIB/],
  ])('rejects %j', (env, msg) => {
    expect(() => loadConfig({ ...tokens, ...env }, '/')).toThrow(ConfigError);
    expect(() => loadConfig({ ...tokens, ...env }, '/')).toThrow(msg);
  });

  it('refuses to start without tokens', () => {
    expect(() => loadConfig({}, '/')).toThrow(/BUILDONCE_CACHE_TOKENS is empty/);
  });

  it('OIDC mode: GitHub defaults, tokens optional', () => {
    const c = loadConfig({ BUILDONCE_CACHE_OIDC_AUDIENCE: 'https://cache.example', BUILDONCE_CACHE_OIDC_REPOSITORIES: 'acme/app, acme/lib' }, '/');
    expect(c.tokens.size).toBe(0);
    expect(c.oidc).toEqual({
      issuer: 'https://token.actions.githubusercontent.com',
      audience: 'https://cache.example',
      jwksUrl: 'https://token.actions.githubusercontent.com/.well-known/jwks',
      repositories: ['acme/app', 'acme/lib'],
      trustedRefs: ['refs/heads/main'],
      clockSkewSeconds: 60,
      maxTokenAgeSeconds: 3600,
    });
    expect(loadConfig({ ...tokens }, '/').oidc).toBeUndefined();
  });

  it.each([
    [{ BUILDONCE_CACHE_OIDC_AUDIENCE: 'a' }, /BUILDONCE_CACHE_OIDC_REPOSITORIES is empty/],
    [{ BUILDONCE_CACHE_OIDC_REPOSITORIES: 'acme/app' }, /without BUILDONCE_CACHE_OIDC_AUDIENCE/],
    [{ BUILDONCE_CACHE_OIDC_AUDIENCE: 'a', BUILDONCE_CACHE_OIDC_REPOSITORIES: 'app' }, /"app" is not owner\/name/],
    [{ BUILDONCE_CACHE_OIDC_AUDIENCE: 'a', BUILDONCE_CACHE_OIDC_REPOSITORIES: 'a/b', BUILDONCE_CACHE_OIDC_TRUSTED_REFS: 'main' }, /not a full ref/],
    [{ BUILDONCE_CACHE_OIDC_AUDIENCE: 'a', BUILDONCE_CACHE_OIDC_REPOSITORIES: 'a/b', BUILDONCE_CACHE_OIDC_ISSUER: 'token.actions' }, /not an http\(s\) URL/],
    [{ BUILDONCE_CACHE_LRU_CYCLE_SECONDS: '0' }, /BUILDONCE_CACHE_LRU_CYCLE_SECONDS=0 is out of range/],
    [{ BUILDONCE_CACHE_MAX_STORE_BYTES: '0' }, /out of range/],
  ])('rejects OIDC / store-cap settings %j', (env, msg) => {
    expect(() => loadConfig({ ...tokens, ...env }, '/')).toThrow(msg);
  });

  it('reads BUILDONCE_CACHE_MAX_STORE_BYTES for an S3 store too (shared by replicas), with its cycle', () => {
    const c = loadConfig(
      { ...tokens, BUILDONCE_CACHE_MAX_STORE_BYTES: '1048576', BUILDONCE_CACHE_STORE: 's3://bucket/x', BUILDONCE_CACHE_LRU_CYCLE_SECONDS: '5' },
      '/',
    );
    expect([c.maxStoreBytes, c.lruCycleMs]).toEqual([1048576, 5000]);
    expect(loadConfig({ ...tokens }, '/').lruCycleMs).toBe(30_000);
  });

  it('reads BUILDONCE_CACHE_MAX_STORE_BYTES for a directory store', () => {
    expect(loadConfig({ ...tokens, BUILDONCE_CACHE_MAX_STORE_BYTES: '1073741824' }, '/').maxStoreBytes).toBe(1073741824);
    expect(loadConfig({ ...tokens }, '/').maxStoreBytes).toBeUndefined();
  });
});

describe('accessFromClaims (GitHub Actions claim rules)', () => {
  const cfg = { repositories: ['Acme/App'], trustedRefs: ['refs/heads/main'] };
  it.each<[Record<string, string>, unknown]>([
    [
      { repository: 'acme/app', event_name: 'push', ref: 'refs/heads/main' },
      { ok: true, principal: { access: 'read-write', namespace: 'trusted' } },
    ],
    [
      { repository: 'acme/app', event_name: 'pull_request', ref: 'refs/pull/51/merge' },
      { ok: true, principal: { access: 'read-write', namespace: 'pr-51' } },
    ],
    [
      { repository: 'acme/app', event_name: 'pull_request', ref: 'refs/pull/051/merge' },
      { ok: false, reason: 'forbidden' },
    ],
    [
      { repository: 'acme/app', event_name: 'pull_request', ref: 'refs/pull/51/head' },
      { ok: false, reason: 'forbidden' },
    ],
    [
      { repository: 'acme/app', event_name: 'pull_request_target', ref: 'refs/heads/main' },
      { ok: false, reason: 'forbidden' },
    ],
    [
      { repository: 'acme/app', event_name: 'push', ref: 'refs/tags/v1' },
      { ok: false, reason: 'forbidden' },
    ],
    [
      { repository: 'acme/app-fork', event_name: 'push', ref: 'refs/heads/main' },
      { ok: false, reason: 'invalid' },
    ],
    [
      { event_name: 'push', ref: 'refs/heads/main' },
      { ok: false, reason: 'invalid' },
    ],
  ])('%j -> %j', (claims, want) => {
    expect(accessFromClaims(claims, cfg)).toMatchObject(want as object);
  });
});

describe('parseCacheStore', () => {
  it('accepts s3 URLs, file URLs, absolute and relative directories', () => {
    expect(parseCacheStore('s3://my-cache/nx/ci/', '/w')).toEqual({ kind: 's3', bucket: 'my-cache', prefix: 'nx/ci', url: 's3://my-cache/nx/ci' });
    expect(parseCacheStore('file:///var/cache/nx', '/w')).toMatchObject({ kind: 'dir', root: '/var/cache/nx' });
    expect(parseCacheStore('/var/cache/nx', '/w')).toMatchObject({ kind: 'dir', root: '/var/cache/nx' });
    expect(parseCacheStore('cache/here', '/w')).toMatchObject({ kind: 'dir', root: join('/w', 'cache/here') });
    expect(parseCacheStore('  ', '/w')).toMatchObject({ kind: 'dir', root: '/w/.buildonce/cache' });
  });
});
