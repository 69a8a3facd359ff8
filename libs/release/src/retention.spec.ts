import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { currentKey, historyKey, openStore, parseStoreUrl, readStoredManifest, type BlobStore } from '@buildonce/store';
import { LedgerError } from './errors';
import { appendEntry } from './ledger';
import { runRetention } from './retention';
import { draft, publishFake } from './testkit';

// Issue 11 item 6: retention fails closed and its rollback window counts only succeeded entries.
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
    for (const v of ['1', '2', '3', '4', '5', '6', '7', '8']) await publishFake(store, { project: 'svc', version: v });
    await appendEntry(store, draft('1'));
    await appendEntry(store, draft('2'));
    for (const v of ['3', '4', '5', '6', '7']) await appendEntry(store, draft(v, { status: 'failed', error: 'boom' }));
    const r = await runRetention({ store, ...opts });
    const reasons = Object.fromEntries(r.kept.map((k) => [k.version, k.reason]));
    expect(reasons['2']).toBe('current');
    expect(reasons['1']).toBe('rollback-window');
    expect(r.deleted.map((v) => v.version).sort()).toEqual(['3', '4', '5', '6', '7', '8']);
    expect(await readStoredManifest(store, 'svc', '1')).toBeDefined();
  });

  it('an unparseable current.json stops retention before it deletes anything', async () => {
    const store = fileStore();
    for (const v of ['1', '2']) await publishFake(store, { project: 'svc', version: v });
    await appendEntry(store, draft('1'));
    const got = await store.getBytes(currentKey('svc', 'prod'));
    await store.putBytesIfMatch(currentKey('svc', 'prod'), Buffer.from('{"version": "1", trunc'), got!.etag);
    const err = await runRetention({ store, ...opts }).then(() => undefined, (e: Error) => e);
    expect(err).toBeInstanceOf(LedgerError);
    expect(err!.message).toMatch(/current\.json: not JSON .*retention stopped, nothing was deleted/);
    expect(err!.message.split('\n')).toHaveLength(1);
    for (const v of ['1', '2']) expect(await readStoredManifest(store, 'svc', v)).toBeDefined();
  });

  it('an unreadable history entry stops retention too', async () => {
    const store = fileStore();
    for (const v of ['1', '2', '3']) await publishFake(store, { project: 'svc', version: v });
    await appendEntry(store, draft('1'));
    await appendEntry(store, draft('2'));
    await store.putBytesIfAbsent(historyKey('svc', 'prod', 3), Buffer.from('{"seq": 3}'));
    const err = await runRetention({ store, ...opts }).then(() => undefined, (e: Error) => e);
    expect(err).toBeInstanceOf(LedgerError);
    expect(err!.message).toMatch(/0000000003\.json: .*retention stopped, nothing was deleted/);
    for (const v of ['1', '2', '3']) expect(await readStoredManifest(store, 'svc', v)).toBeDefined();
  });
});
