import { beforeAll, describe, expect, it } from 'vitest';
import { openStore, parseStoreUrl, type BlobStore } from '@buildonce/store';
import { s3Request } from '@buildonce/testing';
import { useFaultyMotoBucket } from '@buildonce/testing/src/moto-hooks';
import { appendEntry, readCurrent, readHistory } from './ledger';
import { acquireLock } from './lock';
import { draft } from '@buildonce/testing';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';

// Regression tests: a create-only write (history entry, lock lease) whose
// response is lost is retried by the SDK, gets 412 on its own earlier attempt, and must recognise it.
const bucket = 'lost-response';
const s3 = useFaultyMotoBucket(bucket);
let store: BlobStore;

beforeAll(() => {
  store = openStore(parseStoreUrl(`s3://${bucket}/t`));
});

/** acquireLock for `svc` in `env` as `me` (no run) promoting `version`; `o` overrides. */
function lockFor(env: string, version: string, o: Partial<Parameters<typeof acquireLock>[0]>) {
  return acquireLock({
    store,
    project: 'svc' as ProjectName,
    env: env as EnvironmentName,
    actor: 'me',
    runId: null,
    purpose: `promote ${version}`,
    version: version as Version,
    ...o,
  });
}

describe('create-only writes under lost responses (S3 via a fault proxy)', () => {
  it('ledger: a history write applied but unanswered is recorded once, not twice', async () => {
    const env = 'lost-history';
    await appendEntry(store, draft('1' as Version, { environment: env as EnvironmentName }));
    const fired = s3().proxy.failNext('lost', s3Request('PUT', `/releases/svc/${env}/history/`));
    const r = await appendEntry(store, draft('2' as Version, { environment: env as EnvironmentName }));
    await fired;
    const h = await readHistory(store, 'svc' as ProjectName, env as EnvironmentName);
    expect(h.map((e) => [e.seq, e.version])).toEqual([
      [1, '1'],
      [2, '2'],
    ]);
    expect(r.entry.seq).toBe(2);
    expect((await readCurrent(store, 'svc' as ProjectName, env as EnvironmentName))!.entry.seq).toBe(2);
  });

  it('ledger: a lost pointer CAS response still completes the append', async () => {
    const env = 'lost-pointer';
    await appendEntry(store, draft('1' as Version, { environment: env as EnvironmentName }));
    const fired = s3().proxy.failNext('lost', s3Request('PUT', `/releases/svc/${env}/current.json`));
    const r = await appendEntry(store, draft('2' as Version, { environment: env as EnvironmentName }));
    await fired;
    expect(r.entry.seq).toBe(2);
    expect((await readHistory(store, 'svc' as ProjectName, env as EnvironmentName)).map((e) => e.version)).toEqual(['1', '2']);
    expect((await readCurrent(store, 'svc' as ProjectName, env as EnvironmentName))!.entry.version).toBe('2');
  });

  it('lock: a lease write applied but unanswered is recognised as our own (no waiting out our own lease)', async () => {
    const env = 'lost-lock';
    const fired = s3().proxy.failNext('lost', s3Request('PUT', `/releases/svc/${env}/lock.json`));
    const t0 = Date.now();
    const lock = await lockFor(env, '1', { ttlMs: 20_000, waitMs: 5_000 });
    await fired;
    expect(Date.now() - t0).toBeLessThan(4_000);
    expect(lock.unrecorded).toEqual([]);
    expect(lock.held).toBe(true);
    await lock.release();
    const again = await lockFor(env, '2', { waitMs: 1_000 });
    expect(again.unrecorded).toEqual([]);
    await again.release();
  });

  it('lock: a lost takeover response keeps the taken-over lease (so the interrupted deploy gets recorded)', async () => {
    const env = 'lost-takeover';
    let t = Date.now();
    const crashed = await lockFor(env, '5', { actor: 'crashed', runId: '7', ttlMs: 1_000, now: () => t });
    await crashed.abandon();
    t = Date.now() + 60_000; // the crashed holder's lease has expired
    const fired = s3().proxy.failNext('lost', s3Request('PUT', `/releases/svc/${env}/lock.json`));
    const lock = await lockFor(env, '6', { waitMs: 2_000 });
    await fired;
    expect(lock.unrecorded.map((l) => l.actor)).toEqual(['crashed']);
    await lock.release();
  });
});
