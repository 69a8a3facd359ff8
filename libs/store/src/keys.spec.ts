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
import { isProjectName, parseProjectName, type ProjectName, type Version, type EnvironmentName } from '@buildonce/values';

describe('project keys', () => {
  it('maps plain names to themselves and scoped names reversibly', () => {
    expect(projectKey('rust-scorer' as ProjectName)).toBe('rust-scorer');
    expect(projectKey('@acme/api' as ProjectName)).toBe('acme--api');
    expect(projectKey('@acme/api.v2_x' as ProjectName)).toBe('acme--api.v2_x');
    for (const n of ['rust-scorer', '@acme/api', '@a-b/c-d', 'A.b_c', '@acme/a-b-c']) expect(projectFromKey(projectKey(n as ProjectName))).toBe(n);
  });

  it('refuses names that could collide or escape', () => {
    for (const bad of ['', 'a--b', '@acme/a--b', '@ac--me/api', '../x', 'a/b', '@acme', '@acme/', '@/api', '-x', 'x y', 'a'.repeat(129)]) {
      // the grammar is parsed once at the edge (parseProjectName), before any key is built
      expect(() => projectKey(parseProjectName(bad)), bad).toThrow(ConfigError);
    }
    expect(() => projectFromKey('a--b--c')).toThrow(ConfigError);
  });

  it('never maps two different names to one key', () => {
    const names = ['a-b', '@a/b', 'a.b', '@a-/b', 'a_b', '@a/b-c', '@a-b/c'];
    const keys = names.filter(isProjectName).map((n) => projectKey(n));
    expect(new Set(keys).size).toBe(keys.length);
  });
});

describe('artifact keys', () => {
  it('builds and parses every artifact key', () => {
    expect(versionPrefix('@acme/api' as ProjectName, '42' as Version)).toBe('artifacts/acme--api/42/');
    expect(artifactKey('p' as ProjectName, '42' as Version, 'bootstrap.zip', 'preview')).toBe('preview/artifacts/p/42/bootstrap.zip');
    expect(storedManifestKey('p' as ProjectName, '42' as Version)).toBe('artifacts/p/42/manifest.json');
    expect(parseArtifactKey('preview/artifacts/acme--api/42/app.tar.gz')).toEqual({
      namespace: 'preview',
      project: '@acme/api',
      version: '42',
      file: 'app.tar.gz',
    });
    expect(parseArtifactKey(artifactKey('rust-scorer' as ProjectName, '7' as Version, 'manifest.json'))).toEqual({
      namespace: 'trusted',
      project: 'rust-scorer',
      version: '7',
      file: 'manifest.json',
    });
    for (const other of ['artifacts/p/x/f', 'artifacts/p/1/a/b', 'releases/p/dev/current.json', 'artifacts/a--b--c/1/f'])
      expect(parseArtifactKey(other)).toBeUndefined();
  });

  it('refuses versions and files that are not plain', () => {
    expect(() => artifactKey('p' as ProjectName, '1' as Version, '../x')).toThrow(RangeError);
  });
});

describe('release keys', () => {
  it('zero-pads history so key order is numeric order', () => {
    expect(formatSeq(7)).toBe('0000000007');
    expect(historyKey('p' as ProjectName, 'prod' as EnvironmentName, 12)).toBe('releases/p/prod/history/0000000012.json');
    expect(parseSeqKey('releases/p/prod/history/0000000012.json')).toBe(12);
    expect(parseSeqKey('releases/p/prod/current.json')).toBeUndefined();
    expect(() => formatSeq(0)).toThrow(RangeError);
    expect(() => formatSeq(1.5)).toThrow(RangeError);
    const keys = [9, 10, 100, 2].map((s) => historyKey('p' as ProjectName, 'e' as EnvironmentName, s)).sort();
    expect(keys.map(parseSeqKey)).toEqual([2, 9, 10, 100]);
  });

  it('builds and parses pointer, history and lock keys', () => {
    expect(currentKey('@acme/api' as ProjectName, 'prod' as EnvironmentName)).toBe('releases/acme--api/prod/current.json');
    expect(lockKey('p' as ProjectName, 'pr-7' as EnvironmentName)).toBe('releases/p/pr-7/lock.json');
    expect(parseReleaseKey(currentKey('@acme/api' as ProjectName, 'prod' as EnvironmentName))).toEqual({ kind: 'current', project: '@acme/api', env: 'prod' });
    expect(parseReleaseKey(lockKey('p' as ProjectName, 'dev' as EnvironmentName))).toEqual({ kind: 'lock', project: 'p', env: 'dev' });
    expect(parseReleaseKey(historyKey('p' as ProjectName, 'dev' as EnvironmentName, 3))).toEqual({ kind: 'history', project: 'p', env: 'dev', seq: 3 });
    for (const other of ['releases/p/Prod/current.json', 'releases/p/dev/history/1.json', 'releases/p/dev/other.json', 'artifacts/p/1/f'])
      expect(parseReleaseKey(other)).toBeUndefined();
  });
});
