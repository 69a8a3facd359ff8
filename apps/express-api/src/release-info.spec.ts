import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ReleaseInfoError, loadReleaseInfo } from './release-info';

const made: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'ri-'));
  made.push(d);
  return d;
};
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

function stored(project: string, version: string, commit?: string): string {
  return JSON.stringify({
    manifest: {
      schemaVersion: 1,
      project,
      version,
      kind: 'node-tarball',
      files: [{ name: 'x.tar.gz', size: 1, sha256: 'a'.repeat(64) }],
      runtime: 'node>=20',
      architecture: 'x86_64',
      entry: 'main.js',
      toolchain: 't',
    },
    publish: { publishedAt: '2026-02-03T04:05:06.000Z', builder: 'local:x', trusted: true, ...(commit ? { commit } : {}) },
  });
}

describe('loadReleaseInfo', () => {
  it('is dev without an artifact', () => {
    expect(loadReleaseInfo(tmp())).toEqual({ project: 'express-api', version: 'dev', commit: null, publishedAt: null, source: 'dev' });
  });

  it('reads the version from artifact-info.json inside the artifact', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'artifact-info.json'), JSON.stringify({ project: 'express-api', version: '42' }));
    expect(loadReleaseInfo(dir)).toMatchObject({ version: '42', commit: null, source: 'artifact' });
  });

  it('adds commit and publishedAt from the deployed manifest', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'artifact-info.json'), JSON.stringify({ project: 'express-api', version: '42' }));
    mkdirSync(join(dir, '.buildonce'));
    writeFileSync(join(dir, '.buildonce/manifest.json'), stored('express-api', '42', 'deadbeef'));
    expect(loadReleaseInfo(dir)).toEqual({
      project: 'express-api',
      version: '42',
      commit: 'deadbeef',
      publishedAt: '2026-02-03T04:05:06.000Z',
      source: 'deployed',
    });
  });

  it('refuses inconsistent or damaged release directories', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'artifact-info.json'), JSON.stringify({ project: 'express-api', version: '42' }));
    mkdirSync(join(dir, '.buildonce'));
    writeFileSync(join(dir, '.buildonce/manifest.json'), stored('express-api', '43'));
    expect(() => loadReleaseInfo(dir)).toThrow(/is for express-api@43 but the artifact is express-api@42/);
    writeFileSync(join(dir, 'artifact-info.json'), '{"version":"x"}');
    expect(() => loadReleaseInfo(dir)).toThrow(ReleaseInfoError);
    writeFileSync(join(dir, 'artifact-info.json'), '{');
    expect(() => loadReleaseInfo(dir)).toThrow(/not JSON/);
  });
});
