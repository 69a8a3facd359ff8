import { describe, expect, it } from 'vitest';
import type { StoredManifest } from '@buildonce/artifact';
import { draft } from '@buildonce/testing';
import { isPreviewEnvironment } from '@buildonce/values';
import { entryKind, factDeltas, fileDeltas, repositoryOf, runUrl } from './model';
import { age, signedBytes } from './pages';
import type { ProjectName, Version } from '@buildonce/values';

const f = (name: string, size: number, sha = 'a') => ({ name, size, sha256: sha.repeat(64) });

describe('dashboard model (pure)', () => {
  it('fileDeltas: added, removed, changed and unchanged files with byte deltas', () => {
    const d = fileDeltas([f('a.zip', 100), f('gone.txt', 5), f('same', 1)], [f('a.zip', 130, 'b'), f('new.json', 7), f('same', 1)]);
    expect(d).toEqual([
      { name: 'a.zip', change: 'changed', fromSize: 100, toSize: 130, delta: 30 },
      { name: 'gone.txt', change: 'removed', fromSize: 5, delta: -5 },
      { name: 'new.json', change: 'added', toSize: 7, delta: 7 },
      { name: 'same', change: 'same', fromSize: 1, toSize: 1, delta: 0 },
    ]);
  });

  it('factDeltas names only the facts that differ', () => {
    const s = (toolchain: string, glibcMax?: string): StoredManifest => ({
      manifest: {
        schemaVersion: 1,
        project: 'p' as ProjectName,
        version: '1' as Version,
        kind: 'lambda-zip',
        files: [f('b.zip', 1)],
        runtime: 'provided.al2023',
        architecture: 'arm64',
        toolchain,
        ...(glibcMax ? { glibcMax } : {}),
      },
      publish: { publishedAt: 'x', builder: 'local:h', trusted: true },
    });
    expect(factDeltas(s('rust 1.94'), s('rust 1.95', '2.34'))).toEqual([
      { name: 'glibc ceiling', from: '-', to: '2.34' },
      { name: 'toolchain', from: 'rust 1.94', to: 'rust 1.95' },
    ]);
  });

  it('entryKind tells succeeded, failed, failed verification, interrupted, manual and automatic rollbacks apart', () => {
    expect(entryKind({ ...draft('1' as Version), seq: 1, previousVersion: null, schemaVersion: 1 })).toBe('succeeded');
    const base = { ...draft('1' as Version), seq: 1, previousVersion: null, schemaVersion: 1 as const };
    expect(entryKind({ ...base, status: 'failed', error: 'boom' })).toBe('failed');
    expect(entryKind({ ...base, status: 'failed', error: 'x', verification: { kind: 'http', passed: false, attempts: 3, durationMs: 10, detail: 'd' } })).toBe(
      'verification-failed',
    );
    expect(entryKind({ ...base, status: 'failed', error: 'interrupted: "promote 1" by a' })).toBe('interrupted');
    expect(entryKind({ ...base, rollback: true })).toBe('rollback');
    expect(entryKind({ ...base, rollback: true, automatic: true })).toBe('automatic-rollback');
    expect(entryKind({ ...base, rollback: true, status: 'failed' })).toBe('failed-rollback');
  });

  it('CI run links need the repository the manifest records', () => {
    const s = { publish: { builder: 'github-actions:acme/scorer' } } as StoredManifest;
    expect(repositoryOf(s)).toBe('acme/scorer');
    expect(repositoryOf({ publish: { builder: 'local:host' } } as StoredManifest)).toBeUndefined();
    expect(runUrl('acme/scorer', '123')).toBe('https://github.com/acme/scorer/actions/runs/123');
    expect(runUrl('acme/scorer', '123-2')).toBe('https://github.com/acme/scorer/actions/runs/123/attempts/2');
    expect(runUrl(undefined, '123')).toBeUndefined();
    expect(runUrl('acme/scorer', '"><x')).toBeUndefined();
  });

  it('formats ages, byte deltas and preview names', () => {
    const now = new Date('2026-01-02T00:00:00Z');
    expect(age('2026-01-01T23:59:30Z', now)).toBe('30 s ago');
    expect(age('2026-01-01T21:00:00Z', now)).toBe('3 h ago');
    expect(age('2025-12-29T00:00:00Z', now)).toBe('4 d ago');
    expect(signedBytes(0)).toBe('±0 B');
    expect(signedBytes(-300)).toBe('-300 B');
    expect(isPreviewEnvironment('pr-12')).toBe(true);
    expect(isPreviewEnvironment('prod')).toBe(false);
  });
});
