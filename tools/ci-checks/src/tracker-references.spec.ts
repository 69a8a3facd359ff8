import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * Source comments and test names say why, never which tracker item ("issue 11 item 3" tells a reader
 * nothing once the tracker is gone). Checked over every file git tracks with a source extension.
 */
const repo = resolve(__dirname, '../../..');
const SOURCE = /\.(?:[cm]?[jt]s|rs|sh|mts)$/;
const TRACKER_REFERENCE = /\bissues? #?\d+\b/i;
/** This file: its examples name tracker items on purpose. */
const SELF = 'tools/ci-checks/src/tracker-references.spec.ts';

/** `file:line` of every line of a source file that names a tracker item. */
function trackerReferences(files: { path: string; text: string }[]): string[] {
  const found: string[] = [];
  for (const f of files) {
    if (!SOURCE.test(f.path) || f.path === SELF) continue;
    f.text.split('\n').forEach((line, i) => {
      if (TRACKER_REFERENCE.test(line)) found.push(`${f.path}:${i + 1}`);
    });
  }
  return found;
}

describe('tracker references', () => {
  it('no source file names a tracker item', () => {
    const paths = execFileSync('git', ['ls-files'], { cwd: repo, encoding: 'utf8' })
      .split('\n')
      .filter((p) => SOURCE.test(p));
    expect(paths.length).toBeGreaterThan(100);
    const found = trackerReferences(paths.map((path) => ({ path, text: readFileSync(join(repo, path), 'utf8') })));
    expect(found, `say why instead of naming the tracker item: ${found.join(', ')}`).toEqual([]);
  });

  it('the check can fail', () => {
    expect(trackerReferences([{ path: 'libs/store/src/blob.ts', text: 'ok\n// fixes issue 11 item 13\n' }])).toEqual(['libs/store/src/blob.ts:2']);
    expect(trackerReferences([{ path: 'x.ts', text: "it('refuses x (Issue #7)', () => {});" }])).toEqual(['x.ts:1']);
    expect(trackerReferences([{ path: 'docs/a.md', text: 'issue 11' }])).toEqual([]);
    expect(trackerReferences([{ path: 'x.ts', text: '// the issue is the 2 retries' }])).toEqual([]);
  });
});
