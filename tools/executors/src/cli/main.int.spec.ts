import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendEntry } from '@buildonce/ledger';
import { runPublishCommand } from '@buildonce/commands';
import { openStore, parseStoreUrl } from '@buildonce/store';
import { draft, removeTempDirs, tempDir, writeTestBuildOutput, gitIn } from '@buildonce/testing';
import type { ProjectName, Version, EnvironmentName } from '@buildonce/values';

afterAll(removeTempDirs);

/** The `buildonce` bin as CI runs it: a real process in a git workspace with a file store ledger. */
const bin = resolve(__dirname, '../../bin/buildonce.js');
let ws: string;
let c1: string;
let c2: string;

const git = (...args: string[]) => gitIn(ws, ...args);
const cli = (...args: string[]) =>
  spawnSync(process.execPath, [bin, ...args], { cwd: ws, encoding: 'utf8', env: { ...process.env, BUILDONCE_STORE: undefined } });

beforeAll(async () => {
  ws = tempDir('buildonce-cli-');
  writeFileSync(join(ws, 'nx.json'), '{}\n');
  git('init', '-q', '-b', 'main');
  git('add', '-A');
  git('commit', '-qm', 'one');
  c1 = git('rev-parse', 'HEAD');
  writeFileSync(join(ws, 'x.txt'), 'x');
  git('add', '-A');
  git('commit', '-qm', 'two');
  c2 = git('rev-parse', 'HEAD');
  const store = openStore(parseStoreUrl(`file://${join(ws, '.buildonce/store')}`));
  await appendEntry(store, draft('111' as Version, { project: 'svc-a' as ProjectName, environment: 'dev' as EnvironmentName, commit: c1 }));
  await appendEntry(store, draft('222' as Version, { project: 'svc-b' as ProjectName, environment: 'dev' as EnvironmentName, commit: c2 }));
  for (const env of ['prod', 'pr-5'])
    await appendEntry(store, draft('333' as Version, { project: 'svc-c' as ProjectName, environment: env as EnvironmentName, commit: c2 }));
  await appendEntry(store, draft('334' as Version, { project: 'svc-c' as ProjectName, environment: 'dev' as EnvironmentName, commit: c2 }));
});

describe('buildonce CLI', () => {
  it('base prints the common ancestor of the commits running in the environment', () => {
    const r = cli('base', '--env=dev');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(c1);
  });

  it('base prints nothing (exit 0) for an environment with no releases, and refuses bad names', () => {
    const none = cli('base', '--env=staging');
    expect(none.status).toBe(0);
    expect(none.stdout).toBe('');
    expect(none.stderr).toContain('nothing has been promoted to staging yet');
    const bad = cli('base', '--env=../x');
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toContain('invalid environment name');
  });

  it('releases renders markdown for the step summary and JSON for scripts', () => {
    const md = cli('releases', '--env=dev', '--markdown');
    expect(md.status, md.stderr).toBe(0);
    expect(md.stdout).toContain('#### svc-a');
    expect(md.stdout).toMatch(/\| dev \| 1 \| 222 \| ok \| /);
    const json = JSON.parse(cli('releases', '--json', '--project=svc-b').stdout);
    expect(Object.keys(json)).toEqual(['svc-b']);
    expect(json['svc-b'][0]).toMatchObject({ environment: 'dev', version: '222', commit: c2 });
  });

  it("releases as text heads each project's table with its name", () => {
    const text = cli('releases', '--env=dev');
    expect(text.status, text.stderr).toBe(0);
    const heads = text.stdout.split('\n').filter((l) => /^svc-\w:$/.test(l));
    expect(heads).toEqual(['svc-a:', 'svc-b:', 'svc-c:']);
    // each table follows its own name: svc-a's rows (version 111) come before the svc-b line
    expect(text.stdout.indexOf('111')).toBeGreaterThan(text.stdout.indexOf('svc-a:'));
    expect(text.stdout.indexOf('111')).toBeLessThan(text.stdout.indexOf('svc-b:'));
  });

  it('releases lists environments in pipeline order (buildonce.json chain), not by name', () => {
    writeFileSync(join(ws, 'buildonce.json'), JSON.stringify({ environments: [{ name: 'dev' }, { name: 'staging' }, { name: 'prod' }] }));
    try {
      const r = cli('releases', '--json', '--project=svc-c');
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)['svc-c'].map((row: { environment: string }) => row.environment)).toEqual(['dev', 'prod', 'pr-5']);
    } finally {
      rmSync(join(ws, 'buildonce.json'));
    }
  });

  it('resolve prints the artifact URI alone on stdout, or JSON', () => {
    const r = cli('resolve', '--project=svc-c', '--env=prod');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('file:///s/artifacts/svc/333/a.tar.gz\n');
    const j = cli('resolve', '--project=svc-c', '--env=dev', '--json');
    expect(j.status, j.stderr).toBe(0);
    expect(JSON.parse(j.stdout)).toEqual({
      project: 'svc-c',
      environment: 'dev',
      version: '334',
      uri: 'file:///s/artifacts/svc/334/a.tar.gz',
      sha256: 'b'.repeat(64),
    });
    const none = cli('resolve', '--project=svc-a', '--env=prod');
    expect(none.status).toBe(1);
    expect(none.stdout).toBe('');
    expect(none.stderr.trim().split('\n')).toHaveLength(1);
    expect(cli('resolve', '--env=prod').stderr).toContain('--project=<project> is required');
  });

  it('--help prints the usage on stdout and exits 0', () => {
    for (const args of [['--help'], ['-h'], ['help'], ['releases', '--help']]) {
      const r = cli(...args);
      expect(r.status, args.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/^usage: buildonce <command>/);
      for (const c of ['base', 'releases', 'resolve', 'retention']) expect(r.stdout).toContain(`  ${c} `);
    }
    expect(cli().status).toBe(2);
  });

  it('retention --dry-run reports and unknown commands exit 2', () => {
    const r = cli('retention', '--dry-run', '--older-than=1');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/dry run: would delete 0 version\(s\), freeing 0 B/);
    expect(cli('deploy-everything').status).toBe(2);
    expect(cli('retention', '--keep=-1').status).toBe(1);
  });

  it('retention refuses empty or non-integer numbers with one line instead of reading them as 0', () => {
    for (const args of [
      ['--keep=', '--older-than='],
      ['--keep='],
      ['--older-than=', '--dry-run'],
      ['--keep=2.5'],
      ['--keep=0x10'],
      ['--older-than= '],
      ['--pr='],
      ['--keep=0'],
      ['--older-than=0', '--dry-run'],
      ['--older-than=0.5'],
      ['--pr=0'],
      ['--pr=0', '--dry-run'],
    ]) {
      const r = cli('retention', ...args);
      expect(r.status, args.join(' ')).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(/buildonce retention: --(keep|older-than|pr) must be/);
    }
    expect(cli('retention', '--dry-run', '--older-than=1.5', '--keep=3').status).toBe(0);
  });
});

describe('buildonce verify', () => {
  let vws: string;
  const vcli = (...args: string[]) =>
    spawnSync(process.execPath, [bin, ...args], { cwd: vws, encoding: 'utf8', env: { ...process.env, BUILDONCE_STORE: undefined } });

  /** Publishes version `version` of svc into the workspace's embedded store (signed with the workspace key when `signed`). */
  async function publishVersion(version: string, signed: boolean) {
    const out = writeTestBuildOutput(tempDir('buildonce-cli-verify-out-'), { version, bytes: Buffer.from(`zip ${version}`), toolchain: 't' });
    await runPublishCommand({
      project: 'svc' as ProjectName,
      workspaceRoot: vws,
      outputDir: out,
      processEnv: signed ? { BUILDONCE_SIGNING_KEY: 'file:keys/signing.pem' } : {},
      log: () => undefined,
    });
  }

  beforeAll(async () => {
    vws = tempDir('buildonce-cli-verify-');
    const vgit = (...args: string[]) => gitIn(vws, ...args);
    writeFileSync(join(vws, 'nx.json'), '{}\n');
    writeFileSync(join(vws, '.gitignore'), '.buildonce\n');
    mkdirSync(join(vws, 'keys'));
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    writeFileSync(join(vws, 'keys/signing.pem'), privateKey.export({ format: 'pem', type: 'pkcs8' }));
    writeFileSync(join(vws, 'keys/release.pub.pem'), publicKey.export({ format: 'pem', type: 'spki' }));
    writeFileSync(
      join(vws, 'buildonce.json'),
      JSON.stringify({
        environments: [
          { name: 'dev' },
          { name: 'prod', provenance: { keys: ['file:keys/release.pub.pem'], builders: ['local:*'], refs: ['refs/heads/main'] } },
        ],
      }),
    );
    vgit('init', '-q', '-b', 'main');
    vgit('add', '-A');
    vgit('commit', '-qm', 'one');
    await publishVersion('123', true);
    await publishVersion('124', false);
  });

  it('prints the statement facts and the verdict of every environment with a policy', () => {
    const r = vcli('verify', 'svc', '123');
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/^svc@123 \(trusted\) provenance: file:\/\/.*\/artifacts\/svc\/123\/provenance.intoto.json$/m);
    expect(r.stdout).toMatch(/^  builder     local:/m);
    expect(r.stdout).toMatch(/^  ref         refs\/heads\/main$/m);
    expect(r.stdout).toMatch(/^  commit      [0-9a-f]{40}$/m);
    expect(r.stdout).toMatch(/^  subject     bootstrap.zip sha256:[0-9a-f]{64}$/m);
    expect(r.stdout).toMatch(/^prod: verified \(key file:.*release.pub.pem; rules present, envelope, signature, statement, subject, builder, ref\)$/m);
    const dev = vcli('verify', 'svc', '123', '--env=dev');
    expect(dev.status).toBe(0);
    expect(dev.stdout).toContain('dev: not checked (no provenance policy)');
    const json = JSON.parse(vcli('verify', 'svc', '123', '--json').stdout);
    expect(json).toMatchObject({ project: 'svc', version: '123', signed: true, ok: true, verdicts: [{ environment: 'prod', status: 'verified' }] });
  });

  it('exits 1 with the failed rule for an unsigned version, and names bad input in one line', () => {
    const r = vcli('verify', 'svc', '124', '--env=prod');
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('svc@124 (trusted) provenance: none (published unsigned)');
    expect(r.stdout).toMatch(/^prod: REFUSED \(present\): provenance rule "present" failed for svc@124 in prod: /m);
    const missing = vcli('verify', 'svc', '999');
    expect(missing.status).toBe(1);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toContain('version 999 of svc is not in');
    expect(vcli('verify', 'svc').status).toBe(1);
    expect(vcli('verify', 'svc', 'abc').stderr).toContain('is not a version');
  });
});

describe('buildonce ecr-lifecycle (moto ECR)', () => {
  it('writes a lifecycle policy whose first rule keeps keep-* images; refuses a non-ECR registry in one line', async () => {
    const { startMoto } = await import('@buildonce/testing');
    const { CreateRepositoryCommand, GetLifecyclePolicyCommand } = await import('@aws-sdk/client-ecr');
    const { awsClients } = await import('@buildonce/aws');
    const moto = await startMoto();
    try {
      Object.assign(process.env, moto.env);
      const ecr = awsClients({ env: moto.env }).ecr();
      const repo = await ecr.send(new CreateRepositoryCommand({ repositoryName: 'scorer-image', imageTagMutability: 'IMMUTABLE' }));
      const env = { ...process.env, ...moto.env };
      const r = spawnSync(process.execPath, [bin, 'ecr-lifecycle', `--registry=${repo.repository!.repositoryUri}`, '--keep-last=30'], {
        cwd: ws,
        encoding: 'utf8',
        env,
      });
      expect(r.status, r.stderr).toBe(0);
      const policy = JSON.parse((await ecr.send(new GetLifecyclePolicyCommand({ repositoryName: 'scorer-image' }))).lifecyclePolicyText!);
      expect(policy.rules.map((x: { rulePriority: number; selection: { tagStatus: string } }) => [x.rulePriority, x.selection.tagStatus])).toEqual([
        [1, 'tagged'],
        [2, 'untagged'],
        [3, 'any'],
      ]);
      expect(policy.rules[0].selection.tagPrefixList).toEqual(['keep-']);
      expect(policy.rules[2].selection.countNumber).toBe(30);
      const bad = spawnSync(process.execPath, [bin, 'ecr-lifecycle', '--registry=127.0.0.1:5000/x'], { cwd: ws, encoding: 'utf8', env });
      expect(bad.status).toBe(1);
      expect(bad.stderr.trim().split('\n')).toHaveLength(1);
      expect(bad.stderr).toContain('must name an ECR repository');
    } finally {
      await moto.stop();
    }
  });
});
