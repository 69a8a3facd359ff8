import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256File } from './hash';
import { GZIP_OS_UNIX, TAR_EPOCH, TarballError, extractTarGz, listTarGz, writeDeterministicTarGz } from './tar';

const made: string[] = [];
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'tar-spec-'));
  made.push(d);
  return d;
}

describe('writeDeterministicTarGz', () => {
  it('gives identical bytes for identical contents regardless of mtime, mode, umask-ish bits, order and source path', async () => {
    const dir = tmp();
    mkdirSync(join(dir, 'one'));
    mkdirSync(join(dir, 'two', 'deeper'), { recursive: true });
    const a1 = join(dir, 'one', 'main.js');
    const a2 = join(dir, 'two', 'deeper', 'other-name.js');
    writeFileSync(a1, 'console.log(1)\n');
    writeFileSync(a2, 'console.log(1)\n');
    utimesSync(a1, new Date('2001-02-03'), new Date('2001-02-03'));
    utimesSync(a2, new Date('2024-05-06'), new Date('2024-05-06'));
    chmodSync(a1, 0o600);
    chmodSync(a2, 0o664);
    const meta = Buffer.from('{"v":1}\n');
    await writeDeterministicTarGz(
      [
        { name: 'main.js', path: a1 },
        { name: 'lib/x.json', bytes: meta },
        { name: 'lib-a.js', bytes: Buffer.from('a') },
      ],
      join(dir, '1.tar.gz'),
    );
    await writeDeterministicTarGz(
      [
        { name: 'lib-a.js', bytes: Buffer.from('a') },
        { name: 'lib/x.json', bytes: meta },
        { name: 'main.js', path: a2 },
      ],
      join(dir, '2.tar.gz'),
    );
    expect((await sha256File(join(dir, '1.tar.gz'))).hex).toBe((await sha256File(join(dir, '2.tar.gz'))).hex);

    const entries = await listTarGz(join(dir, '1.tar.gz'));
    // byte order: "lib" < "lib-a.js" ("-" 0x2d) < "lib/x.json" ("/" 0x2f) < "main.js"
    expect(entries.map((e) => e.path)).toEqual(['lib/', 'lib-a.js', 'lib/x.json', 'main.js']);
    for (const e of entries) {
      expect(e.uid).toBe(0);
      expect(e.gid).toBe(0);
      expect(e.uname).toBe('');
      expect(e.gname).toBe('');
    }
    expect(entries[0]).toMatchObject({ type: 'Directory', mode: 0o755, mtime: undefined });
    expect(entries.filter((e) => e.type === 'File').every((e) => e.mode === 0o644 && e.mtime === TAR_EPOCH.getTime() / 1000)).toBe(true);
  });

  it('writes a gzip header with no name, no timestamp and OS = Unix', async () => {
    const dir = tmp();
    const out = join(dir, 'x.tar.gz');
    await writeDeterministicTarGz([{ name: 'a', bytes: Buffer.from('x') }], out);
    const head = readFileSync(out).subarray(0, 10);
    expect([...head.subarray(0, 3)]).toEqual([0x1f, 0x8b, 8]);
    expect(head[3]).toBe(0); // FLG: no FNAME/FCOMMENT/FEXTRA/FHCRC
    expect(head.readUInt32LE(4)).toBe(0); // MTIME
    expect(head[9]).toBe(GZIP_OS_UNIX);
  });

  it('keeps executable modes, round-trips through extraction, and changes bytes when contents change', async () => {
    const dir = tmp();
    await writeDeterministicTarGz(
      [
        { name: 'bin/run', bytes: Buffer.from('#!/bin/sh\n'), mode: 0o755 },
        { name: 'a.txt', bytes: Buffer.from('1') },
      ],
      join(dir, '1.tar.gz'),
    );
    await writeDeterministicTarGz(
      [
        { name: 'bin/run', bytes: Buffer.from('#!/bin/sh\n'), mode: 0o755 },
        { name: 'a.txt', bytes: Buffer.from('2') },
      ],
      join(dir, '2.tar.gz'),
    );
    expect(readFileSync(join(dir, '1.tar.gz')).equals(readFileSync(join(dir, '2.tar.gz')))).toBe(false);
    const out = join(dir, 'x');
    mkdirSync(out);
    await extractTarGz(join(dir, '1.tar.gz'), out);
    expect(readFileSync(join(out, 'a.txt'), 'utf8')).toBe('1');
    expect(statSync(join(out, 'bin/run')).mode & 0o111).not.toBe(0);
    expect(statSync(join(out, 'a.txt')).mtime.getTime()).toBe(TAR_EPOCH.getTime());
  });

  it('handles names longer than 100 bytes (PAX) deterministically', async () => {
    const dir = tmp();
    const long = `${'d'.repeat(60)}/${'f'.repeat(80)}.js`;
    await writeDeterministicTarGz([{ name: long, bytes: Buffer.from('x') }], join(dir, '1.tar.gz'));
    await writeDeterministicTarGz([{ name: long, bytes: Buffer.from('x') }], join(dir, '2.tar.gz'));
    expect(readFileSync(join(dir, '1.tar.gz')).equals(readFileSync(join(dir, '2.tar.gz')))).toBe(true);
    expect((await listTarGz(join(dir, '1.tar.gz'))).map((e) => e.path)).toEqual([`${'d'.repeat(60)}/`, long]);
  });

  it('refuses unsafe, duplicate and conflicting names and leaves no partial file', async () => {
    const dir = tmp();
    const out = join(dir, 'bad.tar.gz');
    for (const name of ['../x', '/abs', 'a/./b', 'a//b', 'a\\b', '']) {
      await expect(writeDeterministicTarGz([{ name, bytes: Buffer.from('1') }], out)).rejects.toThrow(TarballError);
    }
    await expect(
      writeDeterministicTarGz(
        [
          { name: 'a', bytes: Buffer.from('1') },
          { name: 'a', bytes: Buffer.from('2') },
        ],
        out,
      ),
    ).rejects.toThrow(/duplicate/);
    await expect(
      writeDeterministicTarGz(
        [
          { name: 'a', bytes: Buffer.from('1') },
          { name: 'a/b', bytes: Buffer.from('2') },
        ],
        out,
      ),
    ).rejects.toThrow(/is a file/);
    await expect(writeDeterministicTarGz([], out)).rejects.toThrow(/at least one/);
    await expect(writeDeterministicTarGz([{ name: 'a', path: join(dir, 'missing') }], out)).rejects.toThrow(/ENOENT/);
    expect(() => statSync(out)).toThrow();
    expect(() => statSync(`${out}.tmp-${process.pid}`)).toThrow();
  });

  it('reports a corrupt archive as TarballError', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'x.tar.gz'), 'not gzip');
    await expect(listTarGz(join(dir, 'x.tar.gz'))).rejects.toThrow(TarballError);
    mkdirSync(join(dir, 'o'));
    await expect(extractTarGz(join(dir, 'x.tar.gz'), join(dir, 'o'))).rejects.toThrow(TarballError);
  });
});
