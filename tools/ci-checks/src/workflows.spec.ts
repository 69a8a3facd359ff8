import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { removeTempDirs, tempDir } from '@buildonce/testing';

afterAll(removeTempDirs);

/** The workflows are security-relevant configuration: check their schema and buildonce's invariants. */
const repo = resolve(__dirname, '../../..');
const dir = join(repo, '.github/workflows');
const files = readdirSync(dir).filter((f) => f.endsWith('.yml'));
const validator = join(repo, 'node_modules/.bin/action-validator');

interface Step {
  run?: string;
  uses?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
interface Job {
  needs?: string | string[];
  steps?: Step[];
  env?: Record<string, string>;
  uses?: string;
  with?: Record<string, string>;
  environment?: string;
  permissions?: Record<string, string>;
}
interface Workflow {
  on: unknown;
  env?: Record<string, string>;
  jobs: Record<string, Job>;
  permissions?: Record<string, string>;
}

const wf = (name: string): Workflow => parse(readFileSync(join(dir, name), 'utf8')) as Workflow;
const text = (name: string) => readFileSync(join(dir, name), 'utf8');
const needs = (j: Job) => (Array.isArray(j.needs) ? j.needs : j.needs ? [j.needs] : []);
const runs = (w: Workflow) =>
  Object.values(w.jobs)
    .flatMap((j) => (j.steps ?? []).map((s) => s.run ?? ''))
    .filter(Boolean);

describe('workflow schema (action-validator)', () => {
  it.each(files)('%s is valid', (f) => {
    const r = spawnSync(validator, [join(dir, f)], { encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });

  it('the validator rejects a broken workflow (the check can fail)', () => {
    const bad = join(tempDir('wf-'), 'bad.yml');
    writeFileSync(bad, 'on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    stepz: []\n');
    expect(spawnSync(validator, [bad], { encoding: 'utf8' }).status).not.toBe(0);
  });
});

describe('workflow invariants', () => {
  /**
   * Only the publish job of release.yml mentions `secret`: no other workflow, not release.yml's
   * workflow-level env (checked for `envMarker`, which may be broader), no other of its jobs.
   */
  const expectOnlyReleasePublishSees = (secret: string, envMarker: string) => {
    for (const f of files) {
      if (f !== 'release.yml') expect(text(f), f).not.toContain(secret);
    }
    const rel = wf('release.yml');
    expect(JSON.stringify(rel.env ?? {})).not.toContain(envMarker);
    const withSecret = Object.entries(rel.jobs)
      .filter(([, j]) => JSON.stringify(j).includes(secret))
      .map(([n]) => n);
    expect(withSecret).toEqual(['publish']);
    return rel;
  };

  it('has ci, release, promote and rollback workflows', () => {
    expect(files.sort()).toEqual(['ci.yml', 'promote.yml', 'release.yml', 'rollback.yml']);
  });

  it('only release.yml uses the trusted write cache token, and only in its publish job', () => {
    expectOnlyReleasePublishSees('BUILDONCE_CACHE_WRITE_TOKEN', 'WRITE_TOKEN');
  });

  it('only the release publish job may sign provenance (BUILDONCE_SIGNING_KEY); pull requests and promote jobs never see it', () => {
    const rel = expectOnlyReleasePublishSees('BUILDONCE_SIGNING_KEY', 'BUILDONCE_SIGNING_KEY');
    expect(rel.jobs.publish!.env?.BUILDONCE_SIGNING_KEY).toBe('${{ vars.BUILDONCE_SIGNING_KEY }}');
  });

  it('pull requests use their OIDC identity for the cache (no static cache secret) and publish only to the preview namespace', () => {
    const ci = wf('ci.yml');
    expect(text('ci.yml')).not.toMatch(/secrets\.BUILDONCE_CACHE_/);
    expect(ci.env?.NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN).toBeUndefined();
    for (const [n, j] of Object.entries(ci.jobs)) {
      if (!(j.steps ?? []).some((s) => /nx affected/.test(s.run ?? ''))) continue;
      // every job that runs nx against the cache mints its token first, with id-token permission
      const steps = j.steps ?? [];
      const mint = steps.findIndex((s) => /core\.getIDToken\(/.test(String(s.with?.script ?? '')));
      const firstNx = steps.findIndex((s) => /nx affected/.test(s.run ?? ''));
      expect(mint, `ci.yml:${n} mints the cache OIDC token`).toBeGreaterThanOrEqual(0);
      expect(mint, `ci.yml:${n} mints before nx runs`).toBeLessThan(firstNx);
      const script = String(steps[mint]!.with!.script);
      expect(script).toContain('core.setSecret(token)');
      expect(script).toContain("core.exportVariable('NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN', token)");
      expect(j.permissions?.['id-token'], `ci.yml:${n}`).toBe('write');
    }
    const publishes = runs(ci).filter((r) => /-t publish/.test(r));
    expect(publishes.length).toBeGreaterThan(0);
    for (const r of publishes) expect(r).toContain('--preview');
    expect(text('ci.yml')).not.toContain('BUILDONCE_PUBLISH_ROLE_ARN');
    for (const r of runs(ci).filter((r) => /-t promote/.test(r))) expect(r).toMatch(/--env="pr-\$BUILDONCE_PR"/);
  });

  it('release promotes dev -> staging -> prod after one publish, prod behind the production environment', () => {
    const rel = wf('release.yml');
    expect(needs(rel.jobs['promote-dev']!)).toContain('publish');
    expect(needs(rel.jobs['promote-staging']!)).toContain('promote-dev');
    expect(needs(rel.jobs['promote-prod']!)).toContain('promote-staging');
    expect(rel.jobs['promote-prod']!.with).toMatchObject({ env: 'prod', 'deploy-environment': 'production' });
    expect(wf('promote.yml').jobs.promote!.environment).toBe('${{ inputs.deploy-environment }}');
  });

  it('every promote passes --env, and only the publish jobs publish (no two jobs upload one name)', () => {
    const all = files.flatMap((f) => runs(wf(f)).map((r) => [f, r] as const));
    const promotes = all.filter(([, r]) => /-t promote/.test(r));
    expect(promotes.length).toBeGreaterThanOrEqual(2);
    for (const [f, r] of promotes) expect(r, f).toMatch(/--env=/);
    const publishers = files.flatMap((f) =>
      Object.entries(wf(f).jobs)
        .filter(([, j]) => (j.steps ?? []).some((s) => /-t publish|:publish/.test(s.run ?? '')))
        .map(([n]) => `${f}:${n}`),
    );
    expect(publishers.sort()).toEqual(['ci.yml:preview', 'release.yml:publish']);
  });

  it('least privilege: workflow-level permissions are read-only; id-token only where AWS is assumed or the cache identity minted', () => {
    for (const f of files) {
      const w = wf(f);
      expect(w.permissions, f).toEqual({ contents: 'read' });
      for (const [n, j] of Object.entries(w.jobs)) {
        const assumes = (j.steps ?? []).some((s) => (s.uses ?? '').startsWith('aws-actions/configure-aws-credentials'));
        const mintsCacheToken = (j.steps ?? []).some((s) => /core\.getIDToken\(/.test(String(s.with?.script ?? '')));
        if (j.permissions?.['id-token'] === 'write') expect(assumes || mintsCacheToken, `${f}:${n}`).toBe(true);
      }
    }
  });

  it('rollback takes project, environment and optional version without interpolating inputs into shell', () => {
    const rb = wf('rollback.yml');
    const inputs = (rb.on as { workflow_dispatch: { inputs: Record<string, { required: boolean }> } }).workflow_dispatch.inputs;
    expect(Object.keys(inputs)).toEqual(['project', 'environment', 'version']);
    expect(inputs.version!.required).toBe(false);
    for (const r of runs(rb)) expect(r).not.toContain('${{ inputs.');
  });

  it('every job that builds or hashes Rust Lambdas installs one toolchain: cargo-lambda + zig for the runtime glibc', () => {
    const action = join(repo, '.github/actions/rust-lambda-toolchain/action.yml');
    const r = spawnSync(validator, [action], { encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const a = parse(readFileSync(action, 'utf8')) as { runs: { steps: Step[] } };
    const steps = a.runs.steps;
    expect(steps.find((s) => s.uses?.startsWith('dtolnay/rust-toolchain'))?.with?.targets).toContain('aarch64-unknown-linux-gnu');
    expect(steps.some((s) => s.uses?.startsWith('mlugg/setup-zig'))).toBe(true);
    expect(steps.some((s) => /pipx install "cargo-lambda==/.test(s.run ?? ''))).toBe(true);
    for (const f of files) {
      for (const [n, j] of Object.entries(wf(f).jobs)) {
        const st = j.steps ?? [];
        // affected/run-many and build/publish/promote hash the Rust build (rollback does not depend on it)
        if (!st.some((s) => /\bnx (affected|run-many)\b|:(build|publish|promote|test)\b/.test(s.run ?? ''))) continue;
        expect(
          st.some((s) => s.uses === './.github/actions/rust-lambda-toolchain'),
          `${f}:${n}`,
        ).toBe(true);
        expect(
          st.some((s) => (s.uses ?? '').startsWith('dtolnay/')),
          `${f}:${n} installs Rust only through the action`,
        ).toBe(false);
      }
    }
  });
});
