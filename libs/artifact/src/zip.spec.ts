import { writeFileSync, utimesSync, readFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import yauzl from 'yauzl';
import { writeDeterministicZip } from './zip';
import { sha256File } from './hash';
import { removeTempDirs, tempDir } from '@buildonce/testing';

afterAll(removeTempDirs);

function listZip(path: string): Promise<{ name: string; mode: number; extra: number; date: Date }[]> {
  return new Promise((resolve, reject) => {
    yauzl.open(path, { lazyEntries: true }, (err, zf) => {
      if (err || !zf) return reject(err);
      const out: { name: string; mode: number; extra: number; date: Date }[] = [];
      zf.on('entry', (e: yauzl.Entry) => {
        out.push({ name: e.fileName, mode: (e.externalFileAttributes >>> 16) & 0o7777, extra: e.extraFields.length, date: e.getLastModDate() });
        zf.readEntry();
      });
      zf.on('end', () => resolve(out));
      zf.on('error', reject);
      zf.readEntry();
    });
  });
}

describe('writeDeterministicZip', () => {
  it('gives identical bytes for identical contents regardless of mtime, mode and order', async () => {
    const dir = tempDir('zip-');
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    writeFileSync(a, 'hello bootstrap');
    writeFileSync(b, 'weights');
    utimesSync(a, new Date('2020-05-05'), new Date('2020-05-05'));
    chmodSync(a, 0o600);
    await writeDeterministicZip(
      [
        { name: 'bootstrap', path: a },
        { name: 'weights.json', path: b },
      ],
      join(dir, '1.zip'),
    );
    utimesSync(a, new Date('2024-01-01'), new Date('2024-01-01'));
    chmodSync(a, 0o777);
    await writeDeterministicZip(
      [
        { name: 'weights.json', path: b },
        { name: 'bootstrap', path: a },
      ],
      join(dir, '2.zip'),
    );
    expect((await sha256File(join(dir, '1.zip'))).hex).toBe((await sha256File(join(dir, '2.zip'))).hex);
    const entries = await listZip(join(dir, '1.zip'));
    expect(entries.map((e) => e.name)).toEqual(['bootstrap', 'weights.json']);
    expect(entries.every((e) => e.mode === 0o755 && e.extra === 0)).toBe(true);
    expect(entries[0]!.date.getFullYear()).toBe(1980);
  });

  it('changes bytes when contents change and refuses unsafe names', async () => {
    const dir = tempDir('zip-');
    await writeDeterministicZip([{ name: 'x', bytes: Buffer.from('1') }], join(dir, '1.zip'));
    await writeDeterministicZip([{ name: 'x', bytes: Buffer.from('2') }], join(dir, '2.zip'));
    expect(readFileSync(join(dir, '1.zip')).equals(readFileSync(join(dir, '2.zip')))).toBe(false);
    await expect(writeDeterministicZip([{ name: '../x', bytes: Buffer.from('1') }], join(dir, '3.zip'))).rejects.toThrow(/relative/);
  });
});
