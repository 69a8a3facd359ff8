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
    const inputs = { bootstrap: { name: 'bootstrap', path: a }, weights: { name: 'weights.json', path: b } };
    // the same two files zipped twice: another mtime and mode of bootstrap, the other order
    for (const [zip, mtime, mode, order] of [
      ['1.zip', '2020-05-05', 0o600, [inputs.bootstrap, inputs.weights]],
      ['2.zip', '2024-01-01', 0o777, [inputs.weights, inputs.bootstrap]],
    ] as const) {
      utimesSync(a, new Date(mtime), new Date(mtime));
      chmodSync(a, mode);
      await writeDeterministicZip([...order], join(dir, zip));
    }
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
