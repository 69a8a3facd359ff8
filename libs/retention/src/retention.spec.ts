import { mkdtempSync, readdirSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PUBLISH_LEASE_SUFFIX, artifactKey, currentKey, historyKey, openStore, parseStoreUrl, readStoredManifest, type BlobStore } from '@buildonce/store';
import { LedgerError } from '@buildonce/errors';
import { RollbackError } from '@buildonce/errors';
import { appendEntry, readCurrent, readHistory, type EntryDraft, type HistoryEntry } from '@buildonce/ledger';
import { ROLLBACK_WINDOW, runRetention } from './retention';
import { planRollback } from '@buildonce/promotion';
import { draft, publishFake } from '@buildonce/testing';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';

// Retention fails closed and its rollback window counts only succeeded entries.
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function fileStore(): BlobStore {
  const dir = mkdtempSync(join(tmpdir(), 'retention-'));
  dirs.push(dir);
  return openStore(parseStoreUrl(`file://${dir}`));
}
const later = new Date(Date.now() + 2 * 24 * 3600 * 1000);
const opts = { olderThanDays: 1, keep: 0, inFlightMs: 0, now: later };

describe('retention safety (file store)', () => {
  it('failed promotions do not push the last good previous version out of the rollback window', async () => {
    const store = fileStore();
    for (const v of ['1', '2', '3', '4', '5', '6', '7', '8']) await publishFake(store, { project: 'svc' as ProjectName, version: v as Version });
    await appendEntry(store, draft('1' as Version));
    await appendEntry(store, draft('2' as Version));
    for (const v of ['3', '4', '5', '6', '7']) await appendEntry(store, draft(v as Version, { status: 'failed', error: 'boom' }));
    const r = await runRetention({ store, ...opts });
    const reasons = Object.fromEntries(r.kept.map((k) => [k.version, k.reason]));
    expect(reasons['2']).toBe('current');
    expect(reasons['1']).toBe('rollback-window');
    expect(r.deleted.map((v) => v.version).sort()).toEqual(['3', '4', '5', '6', '7', '8']);
    expect(await readStoredManifest(store, 'svc' as ProjectName, '1' as Version)).toBeDefined();
  });

  it('an unparseable current.json stops retention before it deletes anything', async () => {
    const store = fileStore();
    for (const v of ['1', '2']) await publishFake(store, { project: 'svc' as ProjectName, version: v as Version });
    await appendEntry(store, draft('1' as Version));
    const got = await store.getBytes(currentKey('svc' as ProjectName, 'prod' as EnvironmentName));
    await store.putBytesIfMatch(currentKey('svc' as ProjectName, 'prod' as EnvironmentName), Buffer.from('{"version": "1", trunc'), got!.etag);
    const err = await runRetention({ store, ...opts }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(LedgerError);
    expect(err!.message).toMatch(/current\.json: not JSON .*retention stopped, nothing was deleted/);
    expect(err!.message.split('\n')).toHaveLength(1);
    for (const v of ['1', '2']) expect(await readStoredManifest(store, 'svc' as ProjectName, v as Version)).toBeDefined();
  });

  it('an unreadable history entry stops retention too', async () => {
    const store = fileStore();
    for (const v of ['1', '2', '3']) await publishFake(store, { project: 'svc' as ProjectName, version: v as Version });
    await appendEntry(store, draft('1' as Version));
    await appendEntry(store, draft('2' as Version));
    await store.putBytesIfAbsent(historyKey('svc' as ProjectName, 'prod' as EnvironmentName, 3), Buffer.from('{"seq": 3}'));
    const err = await runRetention({ store, ...opts }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(LedgerError);
    expect(err!.message).toMatch(/0000000003\.json: .*retention stopped, nothing was deleted/);
    for (const v of ['1', '2', '3']) expect(await readStoredManifest(store, 'svc' as ProjectName, v as Version)).toBeDefined();
  });
});

describe('retention never deletes what rollback would restore (generated promote/rollback/fail sequences)', () => {
  const deployed = (v: string) => ({ target: 'local' as const, root: '/r', path: `/r/releases/${v}`, status: 'deployed' as const });
  /** mulberry32: a small seeded PRNG so a failing sequence can be replayed from its seed */
  const prng = (seed: number) => () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  type Op = 'promote-new' | 'promote-old' | 'deploy-failed' | 'held' | 'failed-restored' | 'rollback' | 'rollback-to';
  const OPS: Op[] = ['promote-new', 'promote-new', 'promote-old', 'deploy-failed', 'held', 'failed-restored', 'rollback', 'rollback', 'rollback-to'];

  /** Appends what each command would record (the ledger protocol, entries with deploy results), for one environment. */
  async function play(store: BlobStore, env: string, ops: (Op | [Op, string])[], published: string[], next: () => string) {
    const h = async () => readHistory(store, 'svc' as ProjectName, env as EnvironmentName);
    const ptr = async () => (await readCurrent(store, 'svc' as ProjectName, env as EnvironmentName))?.entry.version;
    for (const o of ops) {
      const [op, arg] = Array.isArray(o) ? o : [o, undefined];
      const d = (v: string, x: Partial<EntryDraft> = {}) => draft(v as Version, { environment: env as EnvironmentName, deploy: deployed(v), ...x });
      if (op === 'promote-new' || (op === 'promote-old' && !published.length)) {
        const v = arg ?? next();
        if (!published.includes(v)) published.push(v);
        await appendEntry(store, d(v));
      } else if (op === 'promote-old') await appendEntry(store, d(arg ?? published[Math.floor(rnd() * published.length)]!));
      else if (op === 'deploy-failed') await appendEntry(store, d(arg ?? next(), { status: 'failed', deploy: null, error: 'boom' }));
      else if (op === 'held' || op === 'failed-restored') {
        const v = arg ?? next();
        published.push(v);
        await appendEntry(store, d(v, { status: 'failed', error: 'check failed' }));
        const back = await ptr();
        if (op === 'failed-restored' && back) await appendEntry(store, d(back, { rollback: true }));
      } else {
        let target: HistoryEntry;
        try {
          const ok = (await h()).filter((e) => e.status === 'succeeded');
          target = planRollback(await h(), env as EnvironmentName, op === 'rollback-to' ? (arg ?? ok[Math.floor(rnd() * ok.length)]?.version) : undefined);
        } catch (e) {
          if (e instanceof RollbackError) continue;
          throw e;
        }
        await appendEntry(store, d(target.version, { rollback: true }));
      }
    }
  }
  let rnd = prng(1);

  /** After retention: rollback repeated ROLLBACK_WINDOW times (replayed on the history) only ever reaches stored versions. */
  async function assertRollbacksReachStored(store: BlobStore, env: string, label: string) {
    const history = await readHistory(store, 'svc' as ProjectName, env as EnvironmentName);
    const cur = (await readCurrent(store, 'svc' as ProjectName, env as EnvironmentName))?.entry.version;
    if (cur) expect(await readStoredManifest(store, 'svc' as ProjectName, cur), `${label}: current ${cur}`).toBeDefined();
    const live = history.filter((e) => e.deploy).at(-1);
    if (live) expect(await readStoredManifest(store, 'svc' as ProjectName, live.version), `${label}: running ${live.version}`).toBeDefined();
    let seq = history.at(-1)?.seq ?? 0;
    for (let i = 0; i < ROLLBACK_WINDOW; i++) {
      let target: HistoryEntry;
      try {
        target = planRollback(history, env as EnvironmentName);
      } catch (e) {
        if (e instanceof RollbackError) return;
        throw e;
      }
      expect(
        await readStoredManifest(store, 'svc' as ProjectName, target.version),
        `${label}: rollback #${i + 1} → ${target.version} (history ${history.map((e) => `${e.version}${e.rollback ? 'R' : ''}${e.status === 'failed' ? 'F' : ''}`).join(' ')})`,
      ).toBeDefined();
      history.push({ ...target, seq: ++seq, rollback: true, status: 'succeeded', deploy: deployed(target.version) });
    }
  }

  it("the audit's history 201 202 203 202R 204 202R 205 202R 206 202R keeps 201 (what rollback restores next)", async () => {
    const store = fileStore();
    const published = ['201', '202', '203', '204', '205', '206'];
    for (const v of published) await publishFake(store, { project: 'svc' as ProjectName, version: v as Version, kind: 'node-tarball' });
    const ops: [Op, string][] = [
      ['promote-new', '201'],
      ['promote-new', '202'],
      ['promote-new', '203'],
      ['rollback-to', '202'],
      ['promote-new', '204'],
      ['rollback-to', '202'],
      ['promote-new', '205'],
      ['rollback-to', '202'],
      ['promote-new', '206'],
      ['rollback-to', '202'],
    ];
    await play(store, 'prod', ops, [...published], () => 'x');
    expect(planRollback(await readHistory(store, 'svc' as ProjectName, 'prod' as EnvironmentName), 'prod' as EnvironmentName).version).toBe('201');
    await runRetention({ store, ...opts });
    await assertRollbacksReachStored(store, 'prod', 'audit');
  });

  it('20 random sequences over two environments: every version rollback reaches (5 times), the pointer and the running version stay', async () => {
    for (let seed = 1; seed <= 20; seed++) {
      rnd = prng(seed);
      const store = fileStore();
      let n = 100;
      const next = () => String(++n);
      const published: string[] = [];
      for (const env of ['staging', 'prod']) {
        const ops = Array.from({ length: 6 + Math.floor(rnd() * 20) }, () => OPS[Math.floor(rnd() * OPS.length)]!);
        await play(store, env, ops, published, next);
      }
      // every version any entry names is published (plus a few never promoted), all old
      for (let i = 0; i < 3; i++) published.push(next());
      for (const v of new Set(published)) await publishFake(store, { project: 'svc' as ProjectName, version: v as Version, kind: 'node-tarball' });
      const r = await runRetention({ store, ...opts });
      for (const env of ['staging', 'prod']) await assertRollbacksReachStored(store, env, `seed ${seed} ${env}`);
      // and retention did delete something where it could (the test is not vacuous)
      if (seed === 1) expect(r.deleted.length).toBeGreaterThan(0);
    }
  }, 240_000);
});

describe('retention and a publish completing a version', () => {
  it('an old version with a fresh publish lease is kept (in-flight); without one it goes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'retention-lease-'));
    dirs.push(dir);
    const store = openStore(parseStoreUrl(`file://${dir}`));
    for (const v of ['1', '2']) await publishFake(store, { project: 'svc' as ProjectName, version: v as Version, kind: 'node-tarball' });
    const old = new Date(Date.now() - 10 * 24 * 3600 * 1000);
    for (const v of ['1', '2']) for (const f of readdirSync(join(dir, 'artifacts/svc', v))) utimesSync(join(dir, 'artifacts/svc', v, f), old, old);
    await store.putBytesIfAbsent(artifactKey('svc' as ProjectName, '1' as Version, `publish+abc${PUBLISH_LEASE_SUFFIX}`), Buffer.from('{}'));
    const r = await runRetention({ store, olderThanDays: 1, keep: 0 });
    expect(r.kept.map((k) => [k.version, k.reason])).toEqual([['1', 'in-flight']]);
    expect(r.deleted.map((k) => k.version)).toEqual(['2']);
    expect(await readStoredManifest(store, 'svc' as ProjectName, '1' as Version)).toBeDefined();
  });
});
