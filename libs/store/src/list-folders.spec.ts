import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from '@buildonce/testing';
import { FsBlobStore } from './fs-blob';
import { parseStoreUrl } from './url';

afterAll(removeTempDirs);

describe('FsBlobStore.listFolders', () => {
  it('names the folders one level under a prefix, never files, temp or lock folders', async () => {
    const root = tempDir('list-folders-');
    const store = new FsBlobStore(parseStoreUrl(`file://${root}`) as Extract<ReturnType<typeof parseStoreUrl>, { kind: 'file' }>);
    await store.putBytesIfAbsent('releases/a/dev/history/0000000001.json', Buffer.from('{}'));
    await store.putBytesIfAbsent('releases/a/prod/current.json', Buffer.from('{}'));
    await store.putBytesIfAbsent('releases/b--c/dev/current.json', Buffer.from('{}'));
    await store.putBytesIfAbsent('releases/file.json', Buffer.from('{}'));
    mkdirSync(join(root, '.locks'), { recursive: true });
    writeFileSync(join(root, 'top.txt'), 'x');
    expect((await store.listFolders('releases/')).sort()).toEqual(['a', 'b--c']);
    expect((await store.listFolders('releases/a/')).sort()).toEqual(['dev', 'prod']);
    expect(await store.listFolders('releases/none/')).toEqual([]);
    expect((await store.listFolders('')).sort()).toEqual(['releases']);
    await expect(store.listFolders('releases')).rejects.toThrow(/ending in "\/"/);
    await expect(store.listFolders('../')).rejects.toThrow(/invalid store key prefix/);
  });
});
