import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repo, walk } from './repo-files';

/**
 * vitest exits 1 when a project's `test` target finds no spec files, which fails the whole CI run half an hour in;
 * this finds such a project in a second. Every project whose `test` target runs vitest must own at least one spec.
 */
function projectsWithTestTarget(): string[] {
  const roots: string[] = [];
  for (const top of ['apps', 'libs', 'tools']) {
    walk(join(repo, top), (f) => {
      if (!f.endsWith('/project.json')) return;
      const targets = JSON.parse(readFileSync(f, 'utf8')).targets ?? {};
      // Only vitest test targets: cargo's and others decide for themselves what an empty suite means.
      const vitest = ['vitest.config.mts', 'vitest.config.ts'].some((c) => existsSync(join(dirname(f), c)));
      if ('test' in targets && vitest) roots.push(dirname(f));
    });
  }
  return roots;
}

function hasSpec(root: string): boolean {
  let any = false;
  walk(root, (f) => {
    if (/\.spec\.[cm]?[jt]sx?$/.test(f)) any = true;
  });
  return any;
}

describe('test targets', () => {
  it('every project with a vitest test target owns at least one spec file', () => {
    const roots = projectsWithTestTarget();
    expect(roots.length).toBeGreaterThan(10);
    const empty = roots.filter((r) => !hasSpec(r)).map((r) => relative(repo, r));
    expect(empty, `projects whose test target would find no spec (add a spec or drop the target): ${empty.join(', ')}`).toEqual([]);
  });
});
