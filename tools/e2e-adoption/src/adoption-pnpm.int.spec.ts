/**
 * The adoption scenario of matrix.ts with pnpm (symlinked node_modules, `workspace:*` links,
 * pnpm-workspace.yaml): the same libraries and services bundle, publish, promote, start and keep their
 * versions as with npm (adoption.int.spec.ts). Needs pnpm on PATH (tools/scripts/setup.sh installs it).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdoptedWorkspace, git, matrixChecks, step } from './matrix';

// BUILDONCE_E2E_REUSE=<a directory kept by BUILDONCE_E2E_KEEP whose setup finished but whose checks never ran>: run the checks on it
const reuse = process.env.BUILDONCE_E2E_REUSE;
const tmp = reuse ?? mkdtempSync(join(tmpdir(), 'buildonce-adoption-pnpm-'));
const ws = join(tmp, 'acme');
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  if (process.env.BUILDONCE_E2E_KEEP || reuse) process.stderr.write(`[e2e-adoption] kept ${tmp}\n`);
  else rmSync(tmp, { recursive: true, force: true });
});

describe('a fresh pnpm Nx workspace adopts buildonce', () => {
  beforeAll(() => {
    if (!reuse) step('pnpm workspace ready', () => createAdoptedWorkspace(tmp, 'pnpm'));
  }, 2_400_000);

  it('is a pnpm workspace: symlinked node_modules, the services registered in pnpm-workspace.yaml', () => {
    expect(git(ws, 'ls-files', 'pnpm-lock.yaml', 'package-lock.json').trim()).toBe('pnpm-lock.yaml');
    expect(readFileSync(join(ws, 'pnpm-workspace.yaml'), 'utf8')).toMatch(/apps\/\*/);
  });

  matrixChecks('pnpm', () => ws, children);
});
