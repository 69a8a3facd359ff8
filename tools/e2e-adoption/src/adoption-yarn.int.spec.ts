/**
 * The adoption scenario of matrix.ts with yarn berry and the node-modules linker (what
 * create-nx-workspace --packageManager=yarn configures, `workspace:*` links): the same libraries and
 * services bundle, publish, promote, start and keep their versions as with npm (adoption.int.spec.ts).
 * Needs yarn 4 on PATH (tools/scripts/setup.sh installs it).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { git, matrixChecks, useAdoptedWorkspace } from './matrix';

describe('a fresh yarn berry Nx workspace adopts buildonce', () => {
  const { ws, children } = useAdoptedWorkspace('yarn');

  it('is a yarn berry workspace: yarn.lock, node-modules linker, the plugin added through yarn', () => {
    expect(git(ws, 'ls-files', 'yarn.lock', 'package-lock.json', 'pnpm-lock.yaml').trim()).toBe('yarn.lock');
    expect(readFileSync(join(ws, '.yarnrc.yml'), 'utf8')).toMatch(/^nodeLinker: node-modules$/m);
    expect(readFileSync(join(ws, 'yarn.lock'), 'utf8')).toMatch(/"@buildonce\/nx@file:/);
    expect(existsSync(join(ws, '.pnp.cjs'))).toBe(false);
  });

  matrixChecks('yarn', () => ws, children);
});
