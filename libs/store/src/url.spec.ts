import { describe, expect, it } from 'vitest';
import { parseStoreUrl, resolveStoreLocation } from './url';
import { ConfigError } from '@buildonce/errors';

describe('store URLs', () => {
  it('parses s3 URLs with and without prefix', () => {
    expect(parseStoreUrl('s3://my-bucket/a/b/')).toMatchObject({ kind: 's3', bucket: 'my-bucket', prefix: 'a/b', url: 's3://my-bucket/a/b' });
    expect(parseStoreUrl('s3://my-bucket')).toMatchObject({ kind: 's3', bucket: 'my-bucket', prefix: '' });
  });
  it('parses file URLs and absolute paths', () => {
    expect(parseStoreUrl('file:///var/store')).toMatchObject({ kind: 'file', root: '/var/store' });
    expect(parseStoreUrl('/var/store')).toMatchObject({ kind: 'file', root: '/var/store' });
  });
  it('rejects malformed URLs with a one-line hint', () => {
    for (const bad of ['', 'http://x', 's3://Bad_Bucket/x', 's3://ok-bucket/../x', 'relative/path']) {
      expect(() => parseStoreUrl(bad)).toThrow(ConfigError);
    }
    expect(() => parseStoreUrl('gs://x/y')).toThrow(/use s3:\/\/<bucket>\/<prefix> or file:\/\/\/absolute\/path/);
  });
  it('prefers --store, then BUILDONCE_STORE, then buildonce.json, then the embedded default', () => {
    const env = { BUILDONCE_STORE: 's3://bbb' };
    expect(resolveStoreLocation({ option: 's3://aaa/p', env, configured: 's3://ccc', workspaceRoot: '/w' })).toMatchObject({
      url: 's3://aaa/p',
      source: '--store',
    });
    expect(resolveStoreLocation({ option: '', env, configured: 's3://ccc', workspaceRoot: '/w' })).toMatchObject({
      url: 's3://bbb',
      source: 'BUILDONCE_STORE',
    });
    expect(resolveStoreLocation({ env: { BUILDONCE_STORE: ' ' }, configured: 's3://ccc', workspaceRoot: '/w' })).toMatchObject({
      url: 's3://ccc',
      source: 'buildonce.json',
    });
    expect(resolveStoreLocation({ env: {}, workspaceRoot: '/w' })).toMatchObject({ kind: 'file', root: '/w/.buildonce/store', source: 'default' });
  });

  it('names where a malformed store URL came from', () => {
    expect(() => resolveStoreLocation({ env: { BUILDONCE_STORE: 'gs://x' }, workspaceRoot: '/w' })).toThrow(
      /^BUILDONCE_STORE: store URL "gs:\/\/x" is not supported/,
    );
    expect(() => resolveStoreLocation({ env: {}, configured: 's3://B', workspaceRoot: '/w' })).toThrow(ConfigError);
  });
});
