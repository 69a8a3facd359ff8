import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { benignArchives, hostileArchives, rawTarGz } from '@buildonce/testing';
import { ArchivePolicy, tarGzPolicyViolation, type ArchiveEntry } from './archive-policy';

const dir = mkdtempSync(join(tmpdir(), 'tar-policy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function firstViolation(entries: ArchiveEntry[]): string | undefined {
  const p = new ArchivePolicy('deploy');
  for (const e of entries) {
    const v = p.check(e);
    if (v) return v;
  }
  return undefined;
}

describe("ArchivePolicy ('deploy' profile)", () => {
  it.each(hostileArchives().map((a) => [a.name, a] as const))('refuses the hostile archive %s', async (_n, a) => {
    const file = join(dir, `${a.name}.tar.gz`);
    writeFileSync(file, rawTarGz(a.entries));
    const v = await tarGzPolicyViolation(file);
    expect(v).toBeTruthy();
    expect(v!.split('\n')).toHaveLength(1);
  });

  it.each(benignArchives().map((a) => [a.name, a] as const))('accepts the benign archive %s', async (_n, a) => {
    const file = join(dir, `${a.name}.tar.gz`);
    writeFileSync(file, rawTarGz(a.entries));
    expect(await tarGzPolicyViolation(file)).toBeUndefined();
  });

  it('resolves link targets physically through earlier links, and refuses retargeting a traversed name', () => {
    expect(
      firstViolation([
        { path: 'dist/a', kind: 'symlink', linkpath: '.' },
        { path: 'dist/b', kind: 'symlink', linkpath: 'a/a/a/../..' },
      ]),
    ).toMatch(/points outside/);
    expect(
      firstViolation([
        { path: 'dist/a', kind: 'symlink', linkpath: '.' },
        { path: 'dist/b', kind: 'symlink', linkpath: 'a/a/a/..' },
      ]),
    ).toBeUndefined();
    // a -> b/.. is root while b is a plain name; turning b into "b -> ." afterwards would make a escape
    expect(
      firstViolation([
        { path: 'a', kind: 'symlink', linkpath: 'b/..' },
        { path: 'b', kind: 'symlink', linkpath: '.' },
      ]),
    ).toMatch(/replaces a directory that earlier entries use/);
    expect(
      firstViolation([
        { path: 'l1', kind: 'symlink', linkpath: 'l2' },
        { path: 'l2', kind: 'symlink', linkpath: 'l1' },
      ]),
    ).toMatch(/replaces a directory|points outside/);
    expect(
      firstViolation([
        { path: './', kind: 'dir' },
        { path: './main.js', kind: 'file' },
        { path: 'lib/', kind: 'dir' },
        { path: 'lib/', kind: 'dir' },
      ]),
    ).toBeUndefined();
  });
});
