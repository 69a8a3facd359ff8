import { FakeTarget, publishFake, promotionSetup, removeTempDirs } from '@buildonce/testing';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lockKey, StoreAccessError, type BlobStore } from '@buildonce/store';
import { LedgerError } from '@buildonce/errors';
import { readCurrent, readHistory, acquireLock } from '@buildonce/ledger';
import { promoteVersion } from './promote';
import { rollbackEnvironment } from './rollback';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';

// A promoter that crashed mid-deploy (lease left to expire) must be recorded,
// and "already current" must not hide its unrecorded deploy.
afterAll(removeTempDirs);
const setup = () => promotionSetup({ extra: () => ({ lock: { ttlMs: 60_000, waitMs: 5_000 } }) });

/** A promoter of `version` that took the lock, deployed, and died before recording (its lease has expired). */
async function crashMidDeploy(store: BlobStore, target: FakeTarget, version: string): Promise<void> {
  const past = Date.now() - 10 * 60_000;
  const lock = await acquireLock({
    store,
    project: 'svc' as ProjectName,
    env: 'dev' as EnvironmentName,
    actor: 'crashed-bot',
    runId: '99',
    purpose: `promote ${version}`,
    version: version as Version,
    ttlMs: 1_000,
    now: () => past,
  });
  await lock.abandon();
  target.deployed.push(version); // the live target now runs it, the ledger does not say so
}

/** Versions 1 and 2 published, 1 promoted to dev, then a promoter of 2 crashed mid-deploy (lease expired, nothing recorded). */
async function crashedAfterOne() {
  const s = setup();
  await publishFake(s.store, { project: 'svc' as ProjectName, version: '1' as Version });
  await publishFake(s.store, { project: 'svc' as ProjectName, version: '2' as Version });
  await promoteVersion(s.req('1', 'dev'));
  await crashMidDeploy(s.store, s.target, '2');
  return s;
}

describe('interrupted promotions', () => {
  it('promote of the recorded current version repairs an unrecorded deploy instead of answering already-current', async () => {
    const { store, target, req } = await crashedAfterOne();
    const r = await promoteVersion(req('1', 'dev'));
    expect(r.status).toBe('promoted');
    expect(target.deployed).toEqual(['1', '2', '1']); // 1 is live again
    const h = await readHistory(store, 'svc' as ProjectName, 'dev' as EnvironmentName);
    expect(h.map((e) => [e.seq, e.version, e.status])).toEqual([
      [1, '1', 'succeeded'],
      [2, '2', 'failed'],
      [3, '1', 'succeeded'],
    ]);
    expect(h[1]!.error).toMatch(/^interrupted: "promote 2" by crashed-bot/);
    expect((await readCurrent(store, 'svc' as ProjectName, 'dev' as EnvironmentName))!.entry.seq).toBe(3);
    // with nothing in flight, the same request is a no-op again
    expect((await promoteVersion(req('1', 'dev'))).status).toBe('already-current');
  });

  it('rollback to the recorded current version repairs an unrecorded deploy too', async () => {
    const { store, target, req } = setup();
    for (const v of ['1', '2', '3']) await publishFake(store, { project: 'svc' as ProjectName, version: v as Version });
    await promoteVersion(req('1', 'dev'));
    await promoteVersion(req('2', 'dev'));
    await crashMidDeploy(store, target, '3');
    const r = await rollbackEnvironment({ ...req('2', 'dev'), to: '2' });
    expect(r.status).toBe('promoted');
    expect(target.deployed.at(-1)).toBe('2');
    const h = await readHistory(store, 'svc' as ProjectName, 'dev' as EnvironmentName);
    expect(h.map((e) => [e.version, e.status, e.rollback])).toEqual([
      ['1', 'succeeded', false],
      ['2', 'succeeded', false],
      ['3', 'failed', false],
      ['2', 'succeeded', true],
    ]);
  });

  it('a transient read error while recording an interrupted promotion fails the command and keeps the lease for the next one', async () => {
    const { store, target, req } = await crashedAfterOne();
    let failReads = true;
    const flaky: BlobStore = Object.create(store);
    flaky.getBytes = async (key: string) => {
      if (failReads && key.startsWith('artifacts/svc/2/')) throw new StoreAccessError('cannot reach the store (test)');
      return store.getBytes(key);
    };
    const err = await promoteVersion({ ...req('1', 'dev'), store: flaky }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(LedgerError);
    expect(err!.message).toMatch(/could not record the interrupted promotion of 2 by crashed-bot: cannot reach the store \(test\)/);
    expect(err!.message.split('\n')).toHaveLength(1);
    expect((await readHistory(store, 'svc' as ProjectName, 'dev' as EnvironmentName)).length).toBe(1); // nothing half recorded
    const lease = JSON.parse((await store.getBytes(lockKey('svc' as ProjectName, 'dev' as EnvironmentName)))!.bytes.toString());
    expect(lease).toMatchObject({ state: 'released', unrecorded: [{ actor: 'crashed-bot', version: '2', state: 'held' }] });
    failReads = false;
    await promoteVersion(req('1', 'dev'));
    const h = await readHistory(store, 'svc' as ProjectName, 'dev' as EnvironmentName);
    expect(h.map((e) => [e.version, e.status])).toEqual([
      ['1', 'succeeded'],
      ['2', 'failed'],
      ['1', 'succeeded'],
    ]);
  });

  it('a fault at any store request after the takeover (failed, or applied with its response lost) never loses the interrupted deploy', async () => {
    // Generated: the k-th store request of the promotion that takes over fails, for every k until one runs clean;
    // each fault is injected both ways. Then promotions without faults run: the crashed deploy must be in history.
    const writes = new Set(['putBytesIfMatch', 'putBytesIfAbsent', 'putFileIfAbsent', 'delete']);
    for (const mode of ['fails', 'response-lost'] as const) {
      for (let k = 1; ; k++) {
        const { store, target, req } = await crashedAfterOne();
        let calls = 0;
        const faulty = new Proxy(store, {
          get(t, prop, recv) {
            const v = Reflect.get(t, prop, recv);
            if (typeof v !== 'function' || prop === 'uriOf' || prop === 'list') return typeof v === 'function' ? v.bind(t) : v;
            return async (...args: unknown[]) => {
              if (++calls !== k) return v.apply(t, args);
              if (mode === 'response-lost' && writes.has(String(prop))) await v.apply(t, args);
              throw new StoreAccessError(`injected fault at request ${k} (${String(prop)})`);
            };
          },
        });
        // a 1 s lease: where the faulty promotion could not release it, the next one takes it over after expiry
        const first = await promoteVersion({ ...req('1', 'dev'), store: faulty, lock: { ttlMs: 1_000, waitMs: 5_000 } }).then(
          () => 'ok' as const,
          (e: Error) => e,
        );
        if (first !== 'ok') expect(first.message.split('\n'), `k=${k} ${mode}`).toHaveLength(1);
        await promoteVersion(req('1', 'dev'));
        const h = await readHistory(store, 'svc' as ProjectName, 'dev' as EnvironmentName);
        const recorded2 = h.filter((e) => e.version === '2').length;
        expect(recorded2, `k=${k} ${mode}: history ${h.map((e) => `${e.version}:${e.status}`).join(' ')}`).toBeGreaterThanOrEqual(1);
        expect(target.deployed.at(-1), `k=${k} ${mode}`).toBe('1');
        if (calls < k) break; // this promotion made fewer than k requests: every position was covered
      }
    }
  }, 120_000);

  it('a holder whose lease expired while its renewals failed deploys nothing', async () => {
    const { store, target, req } = setup();
    await publishFake(store, { project: 'svc' as ProjectName, version: '1' as Version });
    const lock = lockKey('svc' as ProjectName, 'dev' as EnvironmentName);
    let lockWrites = 0;
    const cut: BlobStore = Object.create(store);
    cut.putBytesIfMatch = async (key, bytes, etag, opts) => {
      // the acquisition lands; every renewal after it cannot reach the store
      if (key === lock && ++lockWrites > 1) throw new StoreAccessError('cannot reach the store (test)');
      return store.putBytesIfMatch(key, bytes, etag, opts);
    };
    cut.getBytes = async (key) => {
      // the read under the lock is slow: the 600 ms lease expires meanwhile
      if (key.endsWith('current.json') && lockWrites >= 1) await new Promise((r) => setTimeout(r, 900));
      return store.getBytes(key);
    };
    const err = await promoteVersion({ ...req('1', 'dev'), store: cut, lock: { ttlMs: 600, waitMs: 5_000 } }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(LedgerError);
    expect(err!.message).toMatch(/^lost the dev lock before deploying 1 .*nothing was deployed; retry$/);
    expect(target.deployed).toEqual([]);
    expect(await readHistory(store, 'svc' as ProjectName, 'dev' as EnvironmentName)).toEqual([]);
  });
});
