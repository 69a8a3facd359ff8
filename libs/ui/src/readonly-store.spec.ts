import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore, parseStoreUrl } from '@buildonce/store';
import { appendEntry, readCurrent } from '@buildonce/release';
import { removeTempDirs, tempDir } from '@buildonce/testing';
import { draft } from '@buildonce/release/src/testkit';
import { ReadOnlyStoreError, readOnlyStore } from './readonly-store';

afterAll(removeTempDirs);

describe('readOnlyStore', () => {
  it('passes reads through and refuses every write before it reaches the backend', async () => {
    const root = tempDir('ui-ro-');
    const inner = openStore(parseStoreUrl(`file://${root}`));
    await appendEntry(inner, draft('7', { project: 'svc', environment: 'dev' }));
    const ro = readOnlyStore(inner);
    expect((await readCurrent(ro, 'svc', 'dev'))?.entry.version).toBe('7');
    const keys: string[] = [];
    for await (const o of ro.list('releases/')) keys.push(o.key);
    expect(keys.length).toBe(2);
    const file = join(root, 'probe.bin');
    const writes: [string, () => Promise<unknown>][] = [
      ['putBytesIfAbsent', () => ro.putBytesIfAbsent('x/new.json', Buffer.from('{}'))],
      ['putBytesIfMatch', () => ro.putBytesIfMatch('releases/svc/dev/current.json', Buffer.from('{}'), null)],
      ['putFileIfAbsent', () => ro.putFileIfAbsent('x/file', file, { sha256Hex: '0'.repeat(64), size: 0 })],
      ['delete', () => ro.delete('releases/svc/dev/current.json')],
      // a write through the ledger API itself
      ['appendEntry', () => appendEntry(ro, draft('8', { project: 'svc', environment: 'dev' }))],
    ];
    for (const [name, w] of writes) await expect(w(), name).rejects.toThrow(ReadOnlyStoreError);
    expect(existsSync(join(root, 'x'))).toBe(false);
    expect((await readCurrent(inner, 'svc', 'dev'))?.entry.version).toBe('7');
    expect(Object.isFrozen(ro)).toBe(true);
  });
});
