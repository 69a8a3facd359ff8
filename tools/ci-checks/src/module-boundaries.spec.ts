import { rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';

/**
 * The layer rules only protect anything if the real lint run can fail: write probe files into real libs,
 * run the repo's eslint on exactly those files, and remove them again.
 */
const repo = resolve(__dirname, '../../..');
const bin = (name: string) => join(repo, 'node_modules/.bin', name);

// Probe names carry the pid so a second checkout or run never deletes (or lints) another's file.
const probe = (dir: string, suffix = '.ts') => join(dir, `boundary-probe-${process.pid}${suffix}`);

/** Writes the files, lints exactly them with the repo's config, and deletes them whatever happens. */
async function lint(files: Record<string, string>) {
  const paths = Object.keys(files).map((rel) => join(repo, rel));
  try {
    for (const [rel, source] of Object.entries(files)) writeFileSync(join(repo, rel), source);
    const r = await execa(bin('eslint'), ['--no-warn-ignored', ...paths], { cwd: repo, reject: false, all: true });
    return { exitCode: r.exitCode, out: r.all ?? '' };
  } finally {
    for (const p of paths) rmSync(p, { force: true });
  }
}

beforeAll(async () => {
  // The Nx rule reads the cached project graph and silently skips itself when there is none (a fresh clone).
  await execa(bin('nx'), ['show', 'projects'], { cwd: repo });
}, 120_000);

describe('module boundaries (eslint, @nx/enforce-module-boundaries)', () => {
  it.each([
    [
      'a lib importing a higher layer fails the lint (libs/provenance, layer:artifact -> @buildonce/image, layer:store)',
      'libs/provenance/src',
      "export { pushImage } from '@buildonce/image';\n",
      ['A project tagged with "layer:artifact" can only depend on libs tagged with "layer:base", "layer:artifact"', '@nx/enforce-module-boundaries'],
    ],
    [
      'libs/store importing @buildonce/promotion fails the lint (promotion already depends on store: Nx reports the cycle first)',
      'libs/store/src',
      "export { promoteVersion } from '@buildonce/promotion';\n",
      ['@nx/enforce-module-boundaries', '"store" and "promotion"'],
    ],
    [
      'a production (non-spec) file importing @buildonce/testing fails the lint',
      'libs/store/src',
      "export { tempDir } from '@buildonce/testing';\n",
      ['no-restricted-imports', "'@buildonce/testing' import is restricted"],
    ],
  ])('%s', async (_name, dir, source, messages) => {
    const r = await lint({ [probe(dir)]: source });
    expect(r.exitCode, r.out).not.toBe(0);
    for (const m of messages) expect(r.out).toContain(m);
  });

  it('a same-layer import (libs/image -> @buildonce/store) and a spec importing @buildonce/testing pass', async () => {
    const r = await lint({
      [probe('libs/image/src')]: "export { openStore } from '@buildonce/store';\n",
      [probe('libs/store/src', '.spec.ts')]: "export { tempDir } from '@buildonce/testing';\n",
    });
    expect(r.out).not.toContain('No cached ProjectGraph');
    expect(r.exitCode, r.out).toBe(0);
  });
});
