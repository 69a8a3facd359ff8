import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { currentKey, historyKey, lockKey, openStore, parseStoreUrl, type BlobStore } from '@buildonce/store';
import { appendEntry, listSeqs, readCurrent, readHistory, serializeEntry, type HistoryEntry } from './ledger';
import { draft } from '@buildonce/testing';
import { acquireLock } from './lock';
import { removeTempDirs, tempDir } from '@buildonce/testing';
import type { ProjectName, Version, EnvironmentName } from '@buildonce/values';

afterAll(removeTempDirs);

function fileStore(): BlobStore {
  return openStore(parseStoreUrl(`file://${tempDir('ledger-')}`));
}

describe('release ledger (file store)', () => {
  it('appends contiguous entries; failed ones do not move the pointer', async () => {
    const store = fileStore();
    const a = await appendEntry(store, draft('1' as Version));
    const b = await appendEntry(store, draft('2' as Version, { status: 'failed', error: 'boom' }));
    const c = await appendEntry(store, draft('3' as Version));
    expect([a.entry.seq, b.entry.seq, c.entry.seq]).toEqual([1, 2, 3]);
    expect(b.entry.previousVersion).toBe('1');
    expect(c.entry.previousVersion).toBe('1');
    expect((await readCurrent(store, 'svc' as ProjectName, 'prod' as EnvironmentName))!.entry).toEqual(c.entry);
    const h = await readHistory(store, 'svc' as ProjectName, 'prod' as EnvironmentName);
    expect(h.map((e) => [e.seq, e.version, e.status])).toEqual([
      [1, '1', 'succeeded'],
      [2, '2', 'failed'],
      [3, '3', 'succeeded'],
    ]);
    expect((await readHistory(store, 'svc' as ProjectName, 'prod' as EnvironmentName, { limit: 2 })).map((e) => e.seq)).toEqual([2, 3]);
  });

  it('30 concurrent writers: contiguous seqs, nothing lost, pointer = last entry', async () => {
    const store = fileStore();
    const versions = Array.from({ length: 30 }, (_, i) => String(100 + i));
    const results = await Promise.all(versions.map((v) => appendEntry(fileStoreAt(store), draft(v as Version))));
    const seqs = results.map((r) => r.entry.seq).sort((x, y) => x - y);
    expect(seqs).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    const h = await readHistory(store, 'svc' as ProjectName, 'prod' as EnvironmentName);
    expect(h.map((e) => e.version).sort()).toEqual(versions);
    const cur = await readCurrent(store, 'svc' as ProjectName, 'prod' as EnvironmentName);
    expect(cur!.entry).toEqual(h[h.length - 1]);
    // previousVersion chains through the history
    for (let i = 1; i < h.length; i++) expect(h[i]!.previousVersion).toBe(h[i - 1]!.version);
  });

  it('repairs the pointer left behind by a writer that stopped between history write and CAS', async () => {
    const store = fileStore();
    await appendEntry(store, draft('1' as Version));
    // a "crashed" writer: wrote history/2 (succeeded) but never moved current.json
    const orphan: HistoryEntry = { schemaVersion: 1, seq: 2, previousVersion: '1' as Version, ...draft('2' as Version) };
    await store.putBytesIfAbsent(historyKey('svc' as ProjectName, 'prod' as EnvironmentName, 2), serializeEntry(orphan));
    expect((await readCurrent(store, 'svc' as ProjectName, 'prod' as EnvironmentName))!.entry.version).toBe('1');
    const r = await appendEntry(store, draft('3' as Version));
    expect(r.repaired).toEqual([2]);
    expect(r.entry.seq).toBe(3);
    expect(r.entry.previousVersion).toBe('2');
    expect((await readCurrent(store, 'svc' as ProjectName, 'prod' as EnvironmentName))!.entry.seq).toBe(3);
    expect(await listSeqs(store, 'svc' as ProjectName, 'prod' as EnvironmentName)).toEqual([1, 2, 3]);
  });

  it('a slow writer whose pointer was advanced by someone else still completes', async () => {
    const store = fileStore();
    await appendEntry(store, draft('1' as Version));
    // simulate: the CAS of writer A fails because B repaired A's entry and appended after it
    let first = true;
    const racing: BlobStore = Object.create(store);
    racing.putBytesIfMatch = async (key, bytes, etag) => {
      if (first && key === currentKey('svc' as ProjectName, 'prod' as EnvironmentName)) {
        first = false;
        await appendEntry(store, draft('3' as Version)); // B: repairs seq 2 (A's), appends seq 3
      }
      return store.putBytesIfMatch(key, bytes, etag);
    };
    const a = await appendEntry(racing, draft('2' as Version));
    expect(a.entry.seq).toBe(2);
    const cur = await readCurrent(store, 'svc' as ProjectName, 'prod' as EnvironmentName);
    expect(cur!.entry.seq).toBe(3);
    expect(cur!.entry.previousVersion).toBe('2');
  });
});

describe('promotion lock', () => {
  it('serialises holders and lets an expired lease be taken over', async () => {
    const store = fileStore();
    const base = {
      store,
      project: 'svc' as ProjectName,
      env: 'prod' as EnvironmentName,
      actor: 'a',
      runId: null,
      purpose: 'promote 1',
      version: '1' as Version,
    };
    const l1 = await acquireLock({ ...base, ttlMs: 60_000 });
    let second = false;
    const p2 = acquireLock({ ...base, actor: 'b', waitMs: 10_000 }).then((l) => {
      second = true;
      return l;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(second).toBe(false);
    await l1.release();
    const l2 = await p2;
    expect(second).toBe(true);
    expect(l2.unrecorded).toEqual([]);
    await expect(acquireLock({ ...base, actor: 'c', waitMs: 200 })).rejects.toThrow(/svc\/prod is locked by b .*gave up after 0 s/);
    await l2.release();
    // crashed holder: a held lease that expired
    const now = Date.now();
    const stale = {
      state: 'held',
      owner: 'x',
      actor: 'crashed',
      runId: '9',
      purpose: 'promote 7',
      version: '7',
      acquiredAt: new Date(now - 120_000).toISOString(),
      expiresAt: new Date(now - 60_000).toISOString(),
    };
    const got = await store.getBytes(lockKey('svc' as ProjectName, 'prod' as EnvironmentName));
    await store.putBytesIfMatch(lockKey('svc' as ProjectName, 'prod' as EnvironmentName), Buffer.from(JSON.stringify(stale)), got!.etag);
    const l3 = await acquireLock({ ...base, waitMs: 1000 });
    expect(l3.unrecorded).toMatchObject([{ actor: 'crashed', version: '7' }]);
    await l3.release();
  });
});

describe('promotion lock: unrecorded promotions travel with the lease', () => {
  it('an expired lease taken over stays in every later lease, released or abandoned, until a holder records it', async () => {
    const store = fileStore();
    let t = Date.now();
    const take = (actor: string, version: string) =>
      acquireLock({
        store,
        project: 'svc' as ProjectName,
        env: 'prod' as EnvironmentName,
        actor,
        runId: null,
        purpose: `promote ${version}`,
        version: version as Version,
        ttlMs: 1_000,
        waitMs: 1_000,
        now: () => t,
      });
    const a = await take('a', '1');
    await a.abandon(); // a crashed mid-deploy
    t += 60_000;
    const b = await take('b', '2');
    expect(b.unrecorded.map((l) => l.actor)).toEqual(['a']);
    await b.release(); // b could not record a: its released lease keeps a
    const c = await take('c', '3');
    expect(c.unrecorded.map((l) => l.actor)).toEqual(['a']);
    await c.abandon(); // c crashed too
    t += 60_000;
    const d = await take('d', '4');
    expect(d.unrecorded.map((l) => [l.actor, l.version])).toEqual([
      ['a', '1'],
      ['c', '3'],
    ]);
    d.recorded();
    await d.release();
    const e = await take('e', '5');
    expect(e.unrecorded).toEqual([]);
    await e.release();
  });
});

/** A second store object on the same root (as another process would have). */
function fileStoreAt(s: BlobStore): BlobStore {
  return openStore(s.location);
}
