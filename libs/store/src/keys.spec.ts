import { describe, expect, it } from 'vitest';
import { ConfigError } from '@buildonce/errors';
import {
  artifactKey,
  currentKey,
  formatSeq,
  historyKey,
  lockKey,
  parseArtifactKey,
  parseReleaseKey,
  parseSeqKey,
  projectFromKey,
  projectKey,
  storedManifestKey,
  versionPrefix,
} from './keys';

describe('project keys', () => {
  it('maps plain names to themselves and scoped names reversibly', () => {
    expect(projectKey('rust-scorer')).toBe('rust-scorer');
    expect(projectKey('@acme/api')).toBe('acme--api');
    expect(projectKey('@acme/api.v2_x')).toBe('acme--api.v2_x');
    for (const n of ['rust-scorer', '@acme/api', '@a-b/c-d', 'A.b_c', '@acme/a-b-c']) expect(projectFromKey(projectKey(n))).toBe(n);
  });

  it('refuses names that could collide or escape', () => {
    for (const bad of ['', 'a--b', '@acme/a--b', '@ac--me/api', '../x', 'a/b', '@acme', '@acme/', '@/api', '-x', 'x y', 'a'.repeat(129)]) {
      expect(() => projectKey(bad), bad).toThrow(ConfigError);
    }
    expect(() => projectFromKey('a--b--c')).toThrow(ConfigError);
  });

  it('never maps two different names to one key', () => {
    const names = ['a-b', '@a/b', 'a.b', '@a-/b', 'a_b', '@a/b-c', '@a-b/c'];
    const keys = names.filter((n) => {
      try {
        projectKey(n);
        return true;
      } catch {
        return false;
      }
    }).map(projectKey);
    expect(new Set(keys).size).toBe(keys.length);
  });
});

describe('artifact keys', () => {
  it('builds and parses every artifact key', () => {
    expect(versionPrefix('@acme/api', '42')).toBe('artifacts/acme--api/42/');
    expect(artifactKey('p', '42', 'bootstrap.zip', 'preview')).toBe('preview/artifacts/p/42/bootstrap.zip');
    expect(storedManifestKey('p', '42')).toBe('artifacts/p/42/manifest.json');
    expect(parseArtifactKey('preview/artifacts/acme--api/42/app.tar.gz')).toEqual({ namespace: 'preview', project: '@acme/api', version: '42', file: 'app.tar.gz' });
    expect(parseArtifactKey(artifactKey('rust-scorer', '7', 'manifest.json'))).toEqual({ namespace: 'trusted', project: 'rust-scorer', version: '7', file: 'manifest.json' });
    for (const other of ['artifacts/p/x/f', 'artifacts/p/1/a/b', 'releases/p/dev/current.json', 'artifacts/a--b--c/1/f']) expect(parseArtifactKey(other)).toBeUndefined();
  });

  it('refuses versions and files that are not plain', () => {
    expect(() => versionPrefix('p', '../1')).toThrow(RangeError);
    expect(() => artifactKey('p', '1', '../x')).toThrow(RangeError);
  });
});

describe('release keys', () => {
  it('zero-pads history so key order is numeric order', () => {
    expect(formatSeq(7)).toBe('0000000007');
    expect(historyKey('p', 'prod', 12)).toBe('releases/p/prod/history/0000000012.json');
    expect(parseSeqKey('releases/p/prod/history/0000000012.json')).toBe(12);
    expect(parseSeqKey('releases/p/prod/current.json')).toBeUndefined();
    expect(() => formatSeq(0)).toThrow(RangeError);
    expect(() => formatSeq(1.5)).toThrow(RangeError);
    const keys = [9, 10, 100, 2].map((s) => historyKey('p', 'e', s)).sort();
    expect(keys.map(parseSeqKey)).toEqual([2, 9, 10, 100]);
  });

  it('builds and parses pointer, history and lock keys', () => {
    expect(currentKey('@acme/api', 'prod')).toBe('releases/acme--api/prod/current.json');
    expect(lockKey('p', 'pr-7')).toBe('releases/p/pr-7/lock.json');
    expect(parseReleaseKey(currentKey('@acme/api', 'prod'))).toEqual({ kind: 'current', project: '@acme/api', env: 'prod' });
    expect(parseReleaseKey(lockKey('p', 'dev'))).toEqual({ kind: 'lock', project: 'p', env: 'dev' });
    expect(parseReleaseKey(historyKey('p', 'dev', 3))).toEqual({ kind: 'history', project: 'p', env: 'dev', seq: 3 });
    for (const other of ['releases/p/Prod/current.json', 'releases/p/dev/history/1.json', 'releases/p/dev/other.json', 'artifacts/p/1/f']) expect(parseReleaseKey(other)).toBeUndefined();
    expect(() => currentKey('p', '../x')).toThrow(ConfigError);
  });
});
