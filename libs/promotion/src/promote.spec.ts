import { publishFake, removeTempDirs, promotionSetup } from '@buildonce/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { ArtifactNotFoundError, type BlobStore } from '@buildonce/store';
import { DeployPreflightError, DeployError } from '@buildonce/deploy';
import { PolicyError, RecordFailedError, UntrustedArtifactError } from '@buildonce/errors';
import { listSeqs, readCurrent, readHistory } from '@buildonce/ledger';
import { promoteVersion, type PromoteRequest } from './promote';
import { rollbackEnvironment } from './rollback';
import type { ProjectName, Version, EnvironmentName } from '@buildonce/values';

afterAll(removeTempDirs);

const setup = () => promotionSetup();

describe('promoteVersion (file store, fake target)', () => {
  it('walks the chain, is a no-op when current, and refuses prod without staging', async () => {
    const { store, target, req } = setup();
    await publishFake(store, { project: 'svc' as ProjectName, version: '1' as Version });
    await publishFake(store, { project: 'svc' as ProjectName, version: '2' as Version });
    for (const env of ['dev', 'staging', 'prod']) expect((await promoteVersion(req('1', env))).status).toBe('promoted');
    expect((await promoteVersion(req('1', 'prod'))).status).toBe('already-current');
    expect(target.deployed).toEqual(['1', '1', '1']);

    await promoteVersion(req('2', 'dev'));
    await expect(promoteVersion(req('2', 'prod'))).rejects.toThrow(PolicyError);
    await expect(promoteVersion(req('2', 'prod'))).rejects.toThrow(
      'version 2 has not succeeded in staging, which prod requires: promote it to staging first (--env=staging)',
    );
    await expect(promoteVersion(req('2', 'staging'))).resolves.toMatchObject({ status: 'promoted' });
    const cur = await readCurrent(store, 'svc' as ProjectName, 'staging' as EnvironmentName);
    expect(cur!.entry).toMatchObject({
      seq: 2,
      version: '2',
      previousVersion: '1',
      commit: 'abc123',
      runId: '7',
      actor: 'tester',
      rollback: false,
      status: 'succeeded',
    });
    expect(cur!.entry.artifact.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect((await readCurrent(store, 'svc' as ProjectName, 'prod' as EnvironmentName))!.entry.version).toBe('1');
  });

  it('records a failed deploy without moving the pointer', async () => {
    const { store, target, req } = setup();
    await publishFake(store, { project: 'svc' as ProjectName, version: '1' as Version });
    await publishFake(store, { project: 'svc' as ProjectName, version: '2' as Version });
    await promoteVersion(req('1', 'dev'));
    target.failNext = 'the disk is on fire\nsecond line';
    const err = await promoteVersion(req('2', 'dev')).catch((e) => e);
    expect(err).toBeInstanceOf(DeployError);
    expect(err.message).toBe('deploy of 2 to dev failed (recorded as seq 2): the disk is on fire');
    const h = await readHistory(store, 'svc' as ProjectName, 'dev' as EnvironmentName);
    expect(h.map((e) => [e.seq, e.version, e.status, e.error ?? null])).toEqual([
      [1, '1', 'succeeded', null],
      [2, '2', 'failed', 'the disk is on fire'],
    ]);
    expect((await readCurrent(store, 'svc' as ProjectName, 'dev' as EnvironmentName))!.entry.seq).toBe(1);
    await promoteVersion(req('2', 'dev'));
    expect((await readCurrent(store, 'svc' as ProjectName, 'dev' as EnvironmentName))!.entry).toMatchObject({ seq: 3, previousVersion: '1' });
  });

  it('refuses preflight failures, missing versions and preview artifacts in chain envs without writing anything', async () => {
    const { store, target, req } = setup();
    await publishFake(store, { project: 'svc' as ProjectName, version: '5' as Version, namespace: 'preview' });
    await publishFake(store, { project: 'svc' as ProjectName, version: '6' as Version, trusted: false });
    await expect(promoteVersion(req('5', 'dev'))).rejects.toThrow(UntrustedArtifactError);
    await expect(promoteVersion(req('5', 'dev'))).rejects.toThrow(/only in the preview namespace .* dev accepts only artifacts published by a trusted build/);
    await expect(promoteVersion(req('5', 'staging'))).rejects.toThrow(UntrustedArtifactError);
    await expect(promoteVersion(req('6', 'dev'))).rejects.toThrow(/published by an untrusted builder/);
    await expect(promoteVersion(req('9', 'dev'))).rejects.toThrow(ArtifactNotFoundError);
    await publishFake(store, { project: 'svc' as ProjectName, version: '7' as Version });
    target.preflightError = new DeployPreflightError('no such function');
    await expect(promoteVersion(req('7', 'dev'))).rejects.toThrow('no such function');
    target.preflightError = undefined;
    expect(await listSeqs(store, 'svc' as ProjectName, 'dev' as EnvironmentName)).toEqual([]);
    // previews accept the preview namespace
    const r = await promoteVersion(req('5', 'pr-12'));
    expect(r.status === 'promoted' && r.entry.artifact.namespace).toBe('preview');
  });

  it('dry run checks everything and writes nothing', async () => {
    const { store, target, req } = setup();
    await publishFake(store, { project: 'svc' as ProjectName, version: '1' as Version });
    const r = await promoteVersion({ ...req('1', 'dev'), dryRun: true });
    expect(r.status).toBe('dry-run');
    expect(target.deployed).toEqual([]);
    const keys: string[] = [];
    for await (const o of store.list('releases/')) keys.push(o.key);
    expect(keys).toEqual([]);
  });

  it('rolls back to the previous version and records it', async () => {
    const { store, target, req } = setup();
    for (const v of ['1', '2']) {
      await publishFake(store, { project: 'svc' as ProjectName, version: v as Version });
      await promoteVersion(req(v, 'dev'));
    }
    const rb = { ...req('0', 'dev') } as Omit<PromoteRequest, 'version'> & { version?: string };
    delete rb.version;
    const r = await rollbackEnvironment(rb);
    expect(r.status).toBe('promoted');
    const cur = await readCurrent(store, 'svc' as ProjectName, 'dev' as EnvironmentName);
    expect(cur!.entry).toMatchObject({ seq: 3, version: '1', previousVersion: '2', rollback: true, commit: 'abc123' });
    expect(target.deployed).toEqual(['1', '2', '1']);
    await expect(rollbackEnvironment(rb)).rejects.toThrow(/no earlier version/);
  });

  it('a deploy that cannot be recorded leaves the lock to expire; the next promotion records it as interrupted', async () => {
    const { store, target, req } = setup();
    await publishFake(store, { project: 'svc' as ProjectName, version: '1' as Version });
    await publishFake(store, { project: 'svc' as ProjectName, version: '2' as Version });
    const flaky: BlobStore = Object.create(store);
    flaky.putBytesIfAbsent = async () => {
      throw new Error('store unavailable');
    };
    const lock = { ttlMs: 300, waitMs: 10_000 };
    const err = await promoteVersion({ ...req('1', 'dev'), store: flaky, lock }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(RecordFailedError);
    expect(err!.message).toMatch(/^deployed 1 to dev but could not record it: store unavailable/);
    expect(target.deployed).toEqual(['1']);
    const r = await promoteVersion({ ...req('2', 'dev'), lock });
    expect(r.status).toBe('promoted');
    const h = await readHistory(store, 'svc' as ProjectName, 'dev' as EnvironmentName);
    expect(h.map((e) => [e.seq, e.version, e.status])).toEqual([
      [1, '1', 'failed'],
      [2, '2', 'succeeded'],
    ]);
    expect(h[0]!.error).toMatch(/^interrupted: "promote 1" by tester \(run 7\) stopped before recording/);
  });
});
