import { afterAll, describe, expect, it } from 'vitest';
import { oneLineRejection, unusedAwsClients, removeTempDirs, publishFake, promotionSetup } from '@buildonce/testing';
import { join } from 'node:path';
import { artifactKey } from '@buildonce/store';
import { parseConfig, type VerifyCheck } from '@buildonce/config';
import { DeployError } from '@buildonce/deploy';
import { PolicyError } from '@buildonce/errors';
import { readCurrent, readHistory } from '@buildonce/ledger';
import { promoteVersion, type PromoteRequest } from './promote';
import { rollbackEnvironment } from './rollback';
import { VerificationFailedError } from '@buildonce/verification';
import type { ProjectName, Version, EnvironmentName } from '@buildonce/values';

const noAws = unusedAwsClients();

afterAll(removeTempDirs);

/** fails for version 2 only, like a smoke test against a broken release */
const smoke = (onFailure?: 'rollback' | 'hold'): VerifyCheck => ({
  kind: 'command',
  command: [
    'node',
    '-e',
    'if (process.env.BUILDONCE_VERSION === "2") { console.error(`smoke: ${process.env.BUILDONCE_PROJECT}@2 in ${process.env.BUILDONCE_ENV} answers 500`); process.exit(2) }',
  ],
  ...(onFailure ? { onFailure } : {}),
});

/** fails for `version` only */
const smokeOf = (version: string, onFailure?: 'rollback' | 'hold'): VerifyCheck => ({
  kind: 'command',
  command: ['node', '-e', `if (process.env.BUILDONCE_VERSION === "${version}") { console.error("smoke: ${version} answers 500"); process.exit(2) }`],
  ...(onFailure ? { onFailure } : {}),
});

function setup(checks: VerifyCheck[]) {
  const config = parseConfig({ environments: [{ name: 'dev' }, { name: 'staging', verify: checks }, { name: 'prod' }] });
  return promotionSetup({
    config,
    extra: (environment) => {
      const c = environment.kind === 'chain' ? environment.verify : undefined;
      return c ? { verify: { checks: c, workspaceRoot: process.cwd(), lambda: noAws.lambda, cloudwatch: noAws.cloudwatch } } : {};
    },
  });
}

describe('promoteVersion with verification (file store, real check processes)', () => {
  it('a failed check records the failed deploy and an automatic rollback; prod refuses the version', async () => {
    const { store, target, req } = setup([smoke()]);
    for (const v of ['1', '2']) await publishFake(store, { project: 'svc' as ProjectName, version: v as Version });
    for (const env of ['dev', 'staging']) await promoteVersion(req('1', env));
    await promoteVersion(req('2', 'dev'));
    const e = await oneLineRejection(promoteVersion(req('2', 'staging')), VerificationFailedError);
    expect(e.message).toMatch(
      /^verification failed for 2 in staging \(seq 2\): command node -e .* failed: .*exited 2: smoke: svc@2 in staging answers 500; rolled back to 1 \(seq 3\)$/,
    );
    expect(target.deployed).toEqual(['1', '1', '2', '2', '1']);
    const h = await readHistory(store, 'svc' as ProjectName, 'staging' as EnvironmentName);
    expect(h.map((x) => [x.seq, x.version, x.status, x.rollback, x.verification?.passed])).toEqual([
      [1, '1', 'succeeded', false, true],
      [2, '2', 'failed', false, false],
      [3, '1', 'succeeded', true, undefined],
    ]);
    expect(h[1]).toMatchObject({
      error: expect.stringMatching(/smoke: svc@2 in staging answers 500/),
      verification: { kind: 'command', attempts: 1 },
      deploy: { target: 'local' },
    });
    expect((await readCurrent(store, 'svc' as ProjectName, 'staging' as EnvironmentName))?.entry.version).toBe('1');
    await expect(promoteVersion(req('2', 'prod'))).rejects.toThrow(PolicyError);
    // version 1 was verified in staging: prod takes it
    await expect(promoteVersion(req('1', 'prod'))).resolves.toMatchObject({ status: 'promoted' });
  });

  it('onFailure hold keeps the new version running without moving the pointer', async () => {
    const { store, target, req } = setup([smoke('hold')]);
    for (const v of ['1', '2']) await publishFake(store, { project: 'svc' as ProjectName, version: v as Version });
    for (const v of ['1', '2']) await promoteVersion(req(v, 'dev'));
    await promoteVersion(req('1', 'staging'));
    const e = await oneLineRejection(promoteVersion(req('2', 'staging')));
    expect(e.message).toMatch(
      /onFailure is hold: the new version stays deployed, staging still records 1 as current \(rollback --env=staging or promote 1 restores it\)$/,
    );
    expect(target.deployed).toEqual(['1', '2', '1', '2']);
    expect((await readHistory(store, 'svc' as ProjectName, 'staging' as EnvironmentName)).map((x) => x.status)).toEqual(['succeeded', 'failed']);
    expect((await readCurrent(store, 'svc' as ProjectName, 'staging' as EnvironmentName))?.entry.version).toBe('1');
  });

  it('a restore that fails too is named in the one line (and recorded)', async () => {
    const { store, target, req } = setup([smoke()]);
    for (const v of ['1', '2']) await publishFake(store, { project: 'svc' as ProjectName, version: v as Version });
    for (const v of ['1', '2']) await promoteVersion(req(v, 'dev'));
    await promoteVersion(req('1', 'staging'));
    const deploy = target.deploy.bind(target);
    target.deploy = async (d) => {
      if (d.version === '1') throw new DeployError('local deploy: disk full');
      return deploy(d);
    };
    const e = await oneLineRejection(promoteVersion(req('2', 'staging')));
    expect(e.message).toMatch(
      /^verification failed for 2 in staging \(seq 2\): .*; 2 is still running in staging: restoring 1 failed too: deploy of 1 to staging failed \(recorded as seq 3\): local deploy: disk full; fix that, then run rollback --env=staging \(or promote 1\)$/,
    );
    expect((await readHistory(store, 'svc' as ProjectName, 'staging' as EnvironmentName)).map((x) => [x.version, x.status, x.rollback])).toEqual([
      ['1', 'succeeded', false],
      ['2', 'failed', false],
      ['1', 'failed', true],
    ]);
  });

  it("after a held failure every documented recovery restores the pointer's version: promote 2, rollback --to=2, rollback (not 1)", async () => {
    const recoveries: [string, (q: (v: string, env: string) => PromoteRequest) => Promise<unknown>][] = [
      ['promote 2', (q) => promoteVersion(q('2', 'staging'))],
      ['rollback --to=2', (q) => rollbackEnvironment({ ...q('2', 'staging'), to: '2' })],
      ['rollback', (q) => rollbackEnvironment(q('2', 'staging'))],
    ];
    for (const [name, recover] of recoveries) {
      const { store, target, req } = setup([smokeOf('3', 'hold')]);
      for (const v of ['1', '2', '3']) await publishFake(store, { project: 'svc' as ProjectName, version: v as Version });
      for (const v of ['1', '2', '3']) await promoteVersion(req(v, 'dev'));
      for (const v of ['1', '2']) await promoteVersion(req(v, 'staging'));
      const e = await oneLineRejection(promoteVersion(req('3', 'staging')));
      expect(e.message, name).toMatch(/onFailure is hold: the new version stays deployed, staging still records 2 as current/);
      expect(target.deployed.at(-1)).toBe('3');
      await expect(recover(req), name).resolves.toMatchObject({ status: 'promoted', entry: { version: '2', status: 'succeeded' } });
      expect(target.deployed.at(-1), name).toBe('2');
      // now 2 runs and is recorded: the same command is a no-op
      await expect(recover(req), name).resolves.toMatchObject({ status: name === 'rollback' ? 'promoted' : 'already-current' });
    }
  });

  it("a restore that cannot start (the previous version's file is gone) is recorded, names what is still running, and promote 2 repairs after the file is back", async () => {
    const { store, target, req } = setup([smokeOf('3')]);
    const pub: Record<string, Awaited<ReturnType<typeof publishFake>>> = {};
    for (const v of ['1', '2', '3']) pub[v] = await publishFake(store, { project: 'svc' as ProjectName, version: v as Version });
    for (const v of ['1', '2', '3']) await promoteVersion(req(v, 'dev'));
    for (const v of ['1', '2']) await promoteVersion(req(v, 'staging'));
    const file = pub['2']!.manifest.files[0]!;
    await store.delete(artifactKey('svc' as ProjectName, '2' as Version, file.name));
    const e = await oneLineRejection(promoteVersion(req('3', 'staging')), VerificationFailedError);
    expect(e.message).toMatch(
      /^verification failed for 3 in staging \(seq 3\): .*; 3 is still running in staging: restoring 2 failed too: .*bootstrap\.zip is missing; fix that, then run rollback --env=staging \(or promote 2\)$/,
    );
    expect((await readHistory(store, 'svc' as ProjectName, 'staging' as EnvironmentName)).map((x) => [x.version, x.status, x.rollback])).toEqual([
      ['1', 'succeeded', false],
      ['2', 'succeeded', false],
      ['3', 'failed', false],
      ['2', 'failed', true],
    ]);
    expect(target.deployed.at(-1)).toBe('3');
    await expect(promoteVersion(req('2', 'staging'))).rejects.toThrow(/bootstrap\.zip is missing/);
    await store.putFileIfAbsent(artifactKey('svc' as ProjectName, '2' as Version, file.name), join(pub['2']!.dir, file.name), {
      sha256Hex: file.sha256,
      size: file.size,
    });
    await expect(promoteVersion(req('2', 'staging'))).resolves.toMatchObject({ status: 'promoted' });
    expect(target.deployed.at(-1)).toBe('2');
    await expect(promoteVersion(req('2', 'staging'))).resolves.toMatchObject({ status: 'already-current' });
  });

  it('a failing first release has nothing to roll back to', async () => {
    const { store, req } = setup([smoke()]);
    await publishFake(store, { project: 'svc' as ProjectName, version: '2' as Version });
    await promoteVersion(req('2', 'dev'));
    const e = await oneLineRejection(promoteVersion(req('2', 'staging')));
    expect(e.message).toMatch(/nothing to roll back to \(first release of svc in staging\)$/);
    expect(await readCurrent(store, 'svc' as ProjectName, 'staging' as EnvironmentName)).toBeUndefined();
    expect((await readHistory(store, 'svc' as ProjectName, 'staging' as EnvironmentName)).map((x) => x.status)).toEqual(['failed']);
  });
});
