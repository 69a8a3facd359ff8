import { describe, expect, it } from 'vitest';
import { parseStoreUrl, resolveStoreLocation } from './url';
import { StoreConfigError } from './errors';

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
      expect(() => parseStoreUrl(bad)).toThrow(StoreConfigError);
    }
    expect(() => parseStoreUrl('gs://x/y')).toThrow(/use s3:\/\/<bucket>\/<prefix> or file:\/\/\/absolute\/path/);
  });
  it('prefers the option, then BUILDONCE_STORE, then the embedded default', () => {
    expect(resolveStoreLocation({ store: 's3://aaa/p', env: { BUILDONCE_STORE: 's3://bbb' }, workspaceRoot: '/w' }).url).toBe('s3://aaa/p');
    expect(resolveStoreLocation({ env: { BUILDONCE_STORE: 's3://bbb' }, workspaceRoot: '/w' }).url).toBe('s3://bbb');
    expect(resolveStoreLocation({ env: {}, workspaceRoot: '/w' })).toMatchObject({ kind: 'file', root: '/w/.buildonce/store' });
  });
});
