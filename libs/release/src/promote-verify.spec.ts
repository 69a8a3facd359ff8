import { afterAll, describe, expect, it } from 'vitest';
import { openStore, parseStoreUrl, type BlobStore } from '@buildonce/store';
import { removeTempDirs, tempDir } from '@buildonce/testing';
import { parseConfig, resolveEnvironment, type VerifyCheck } from './config';
import { DeployError } from '@buildonce/deploy';
import { PolicyError } from './errors';
import { readCurrent, readHistory } from './ledger';
import { promoteVersion, type PromoteRequest } from './promote';
import { FakeTarget, publishFake } from './testkit';
import { VerificationFailedError } from './verify';

afterAll(removeTempDirs);

const meta = { commit: 'abc123', runId: '7', actor: 'tester' };
/** fails for version 2 only, like a smoke test against a broken release */
const smoke = (onFailure?: 'rollback' | 'hold'): VerifyCheck => ({
  kind: 'command',
  command: ['node', '-e', 'if (process.env.BUILDONCE_VERSION === "2") { console.error(`smoke: ${process.env.BUILDONCE_PROJECT}@2 in ${process.env.BUILDONCE_ENV} answers 500`); process.exit(2) }'],
  ...(onFailure ? { onFailure } : {}),
});

function setup(checks: VerifyCheck[]) {
  const config = parseConfig({ environments: [{ name: 'dev' }, { name: 'staging', verify: checks }, { name: 'prod' }] });
  const store: BlobStore = openStore(parseStoreUrl(`file://${tempDir('promote-verify-')}`));
  const target = new FakeTarget();
  const lines: string[] = [];
  const req = (version: string, env: string): PromoteRequest => {
    const environment = resolveEnvironment(config, env);
    const c = environment.kind === 'chain' ? environment.verify : undefined;
    return { store, project: 'svc', version, environment, target, meta, log: (l) => lines.push(l), ...(c ? { verify: { checks: c, workspaceRoot: process.cwd() } } : {}) };
  };
  return { store, target, lines, req };
}

async function oneLineError(p: Promise<unknown>): Promise<Error> {
  const e = await p.then(() => undefined, (x: Error) => x);
  expect(e).toBeInstanceOf(Error);
  expect(e!.message).not.toContain('\n');
  return e!;
}

describe('promoteVersion with verification (file store, real check processes)', () => {
  it('a failed check records the failed deploy and an automatic rollback; prod refuses the version', async () => {
    const { store, target, req } = setup([smoke()]);
    for (const v of ['1', '2']) await publishFake(store, { project: 'svc', version: v });
    for (const env of ['dev', 'staging']) await promoteVersion(req('1', env));
    await promoteVersion(req('2', 'dev'));
    const e = await oneLineError(promoteVersion(req('2', 'staging')));
    expect(e).toBeInstanceOf(VerificationFailedError);
    expect(e.message).toMatch(/^verification failed for 2 in staging \(seq 2\): command node -e .* failed: .*exited 2: smoke: svc@2 in staging answers 500; rolled back to 1 \(seq 3\)$/);
    expect(target.deployed).toEqual(['1', '1', '2', '2', '1']);
    const h = await readHistory(store, 'svc', 'staging');
    expect(h.map((x) => [x.seq, x.version, x.status, x.rollback, x.verification?.passed])).toEqual([
      [1, '1', 'succeeded', false, true],
      [2, '2', 'failed', false, false],
      [3, '1', 'succeeded', true, undefined],
    ]);
    expect(h[1]).toMatchObject({ error: expect.stringMatching(/smoke: svc@2 in staging answers 500/), verification: { kind: 'command', attempts: 1 }, deploy: { target: 'local' } });
    expect((await readCurrent(store, 'svc', 'staging'))?.entry.version).toBe('1');
    await expect(promoteVersion(req('2', 'prod'))).rejects.toThrow(PolicyError);
    // version 1 was verified in staging: prod takes it
    await expect(promoteVersion(req('1', 'prod'))).resolves.toMatchObject({ status: 'promoted' });
  });

  it('onFailure hold keeps the new version running without moving the pointer', async () => {
    const { store, target, req } = setup([smoke('hold')]);
    for (const v of ['1', '2']) await publishFake(store, { project: 'svc', version: v });
    for (const v of ['1', '2']) await promoteVersion(req(v, 'dev'));
    await promoteVersion(req('1', 'staging'));
    const e = await oneLineError(promoteVersion(req('2', 'staging')));
    expect(e.message).toMatch(/onFailure is hold: the new version stays deployed, staging still records 1 as current$/);
    expect(target.deployed).toEqual(['1', '2', '1', '2']);
    expect((await readHistory(store, 'svc', 'staging')).map((x) => x.status)).toEqual(['succeeded', 'failed']);
    expect((await readCurrent(store, 'svc', 'staging'))?.entry.version).toBe('1');
  });

  it('a restore that fails too is named in the one line (and recorded)', async () => {
    const { store, target, req } = setup([smoke()]);
    for (const v of ['1', '2']) await publishFake(store, { project: 'svc', version: v });
    for (const v of ['1', '2']) await promoteVersion(req(v, 'dev'));
    await promoteVersion(req('1', 'staging'));
    const deploy = target.deploy.bind(target);
    target.deploy = async (d) => {
      if (d.version === '1') throw new DeployError('local deploy: disk full');
      return deploy(d);
    };
    const e = await oneLineError(promoteVersion(req('2', 'staging')));
    expect(e.message).toMatch(/^verification failed for 2 in staging \(seq 2\): .*; restoring 1 failed too: deploy of 1 to staging failed \(recorded as seq 3\): local deploy: disk full; run rollback --env=staging$/);
    expect((await readHistory(store, 'svc', 'staging')).map((x) => [x.version, x.status, x.rollback])).toEqual([
      ['1', 'succeeded', false],
      ['2', 'failed', false],
      ['1', 'failed', true],
    ]);
  });

  it('a failing first release has nothing to roll back to', async () => {
    const { store, req } = setup([smoke()]);
    await publishFake(store, { project: 'svc', version: '2' });
    await promoteVersion(req('2', 'dev'));
    const e = await oneLineError(promoteVersion(req('2', 'staging')));
    expect(e.message).toMatch(/nothing to roll back to \(first release of svc in staging\)$/);
    expect(await readCurrent(store, 'svc', 'staging')).toBeUndefined();
    expect((await readHistory(store, 'svc', 'staging')).map((x) => x.status)).toEqual(['failed']);
  });
});
