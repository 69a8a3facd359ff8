/**
 * The adoption scenario of matrix.ts with yarn berry and the node-modules linker (what
 * create-nx-workspace --packageManager=yarn configures, `workspace:*` links): the same libraries and
 * services bundle, publish, promote, start and keep their versions as with npm (adoption.int.spec.ts).
 * Needs yarn 4 on PATH (tools/scripts/setup.sh installs it).
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdoptedWorkspace, git, matrixChecks, step } from './matrix';

// BUILDONCE_E2E_REUSE=<a directory kept by BUILDONCE_E2E_KEEP whose setup finished but whose checks never ran>: run the checks on it
const reuse = process.env.BUILDONCE_E2E_REUSE;
const tmp = reuse ?? mkdtempSync(join(tmpdir(), 'buildonce-adoption-yarn-'));
const ws = join(tmp, 'acme');
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  if (process.env.BUILDONCE_E2E_KEEP || reuse) process.stderr.write(`[e2e-adoption] kept ${tmp}\n`);
  else rmSync(tmp, { recursive: true, force: true });
});

describe('a fresh yarn berry Nx workspace adopts buildonce', () => {
  beforeAll(() => {
    if (!reuse) step('yarn workspace ready', () => createAdoptedWorkspace(tmp, 'yarn'));
  }, 2_400_000);

  it('is a yarn berry workspace: yarn.lock, node-modules linker, the plugin added through yarn', () => {
    expect(git(ws, 'ls-files', 'yarn.lock', 'package-lock.json', 'pnpm-lock.yaml').trim()).toBe('yarn.lock');
    expect(readFileSync(join(ws, '.yarnrc.yml'), 'utf8')).toMatch(/^nodeLinker: node-modules$/m);
    expect(readFileSync(join(ws, 'yarn.lock'), 'utf8')).toMatch(/"@buildonce\/nx@file:/);
    expect(existsSync(join(ws, '.pnp.cjs'))).toBe(false);
  });

  matrixChecks('yarn', () => ws, children);
});
