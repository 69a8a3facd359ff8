import { describe, expect, it } from 'vitest';
import { ManifestError, parseManifest, parseManifestJson, sameFiles } from './manifest';

const good = {
  schemaVersion: 1,
  project: 'rust-scorer',
  version: '1234567890',
  kind: 'lambda-zip',
  files: [{ name: 'bootstrap.zip', size: 10, sha256: 'a'.repeat(64) }],
  runtime: 'provided.al2023',
  architecture: 'x86_64',
  handler: 'bootstrap',
  toolchain: 'rustc 1.95.0',
};

describe('manifest schema', () => {
  it('accepts a valid manifest', () => {
    expect(parseManifest(good).project).toBe('rust-scorer');
  });
  it('accepts scoped project names (the ts preset names projects @scope/name) and nothing path-like', () => {
    expect(parseManifest({ ...good, project: '@acme/api' }).project).toBe('@acme/api');
    for (const project of ['@acme', '@acme/', '@/api', 'acme/api', '@a/b/c', '../x', '@acme/.x']) {
      expect(() => parseManifest({ ...good, project }), project).toThrow(/project: project names are "name" or "@scope\/name"/);
    }
  });
  it('names the bad field', () => {
    expect(() => parseManifest({ ...good, version: 'abc' })).toThrow(/version: a version is the Nx task hash/);
    expect(() => parseManifest({ ...good, files: [{ name: '../x', size: 1, sha256: 'a'.repeat(64) }] })).toThrow(/files\.0\.name/);
    expect(() => parseManifest({ ...good, extra: 1 })).toThrow(ManifestError);
    expect(() => parseManifestJson('{', 'dist/x/artifact.json')).toThrow(/dist\/x\/artifact.json: not JSON/);
  });
  it('records the glibc a lambda binary needs (glibcMax), optional for other kinds', () => {
    expect(parseManifest({ ...good, architecture: 'arm64', glibcMax: '2.34' }).glibcMax).toBe('2.34');
    expect(parseManifest(good).glibcMax).toBeUndefined();
    expect(() => parseManifest({ ...good, glibcMax: 'GLIBC_2.34' })).toThrow(/glibcMax: glibcMax is a glibc version such as 2\.34/);
  });
  it('compares files by name, size and sha256', () => {
    const m = parseManifest(good);
    expect(sameFiles(m, m)).toBe(true);
    expect(sameFiles(m, parseManifest({ ...good, files: [{ ...good.files[0], sha256: 'b'.repeat(64) }] }))).toBe(false);
  });
});
