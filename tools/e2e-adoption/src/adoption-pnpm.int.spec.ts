/**
 * The adoption scenario of matrix.ts with pnpm (symlinked node_modules, `workspace:*` links,
 * pnpm-workspace.yaml): the same libraries and services bundle, publish, promote, start and keep their
 * versions as with npm (adoption.int.spec.ts). Needs pnpm on PATH (tools/scripts/setup.sh installs it).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { git, matrixChecks, useAdoptedWorkspace } from './matrix';

describe('a fresh pnpm Nx workspace adopts buildonce', () => {
  const { ws, children } = useAdoptedWorkspace('pnpm');

  it('is a pnpm workspace: symlinked node_modules, the services registered in pnpm-workspace.yaml', () => {
    expect(git(ws, 'ls-files', 'pnpm-lock.yaml', 'package-lock.json').trim()).toBe('pnpm-lock.yaml');
    expect(readFileSync(join(ws, 'pnpm-workspace.yaml'), 'utf8')).toMatch(/apps\/\*/);
  });

  matrixChecks('pnpm', () => ws, children);
});
