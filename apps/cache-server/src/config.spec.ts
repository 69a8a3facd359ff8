import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_BYTES, loadConfig, parseCacheStore } from './config';
import { ConfigError } from './errors';

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

  it('reads PORT, HOST and BUILDONCE_CACHE_MAX_BYTES', () => {
    const c = loadConfig({ ...tokens, PORT: '8080', HOST: '127.0.0.1', BUILDONCE_CACHE_MAX_BYTES: '1048576' }, '/');
    expect([c.port, c.host, c.maxBytes]).toEqual([8080, '127.0.0.1', 1048576]);
  });

  it.each([
    [{ PORT: 'eighty' }, /PORT/],
    [{ PORT: '70000' }, /PORT=70000 is out of range/],
    [{ BUILDONCE_CACHE_MAX_BYTES: '0' }, /BUILDONCE_CACHE_MAX_BYTES/],
    [{ BUILDONCE_CACHE_MAX_BYTES: '2G' }, /not a non-negative integer/],
    [{ BUILDONCE_CACHE_STORE: 's3://Bad_Bucket/x' }, /BUILDONCE_CACHE_STORE: .*invalid S3 bucket name/],
    [{ BUILDONCE_CACHE_STORE: 'gs://bucket/x' }, /not supported/],
  ])('rejects %j', (env, msg) => {
    expect(() => loadConfig({ ...tokens, ...env }, '/')).toThrow(ConfigError);
    expect(() => loadConfig({ ...tokens, ...env }, '/')).toThrow(msg);
  });

  it('refuses to start without tokens', () => {
    expect(() => loadConfig({}, '/')).toThrow(/BUILDONCE_CACHE_TOKENS is empty/);
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
