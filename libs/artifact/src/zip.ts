import yauzl from 'yauzl';
import { createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { ZipFile } from 'yazl';

/** One entry of a deterministic zip: a name inside the archive and its bytes (from disk or memory). */
export type ZipEntry = { name: string; path: string; mode?: number } | { name: string; bytes: Uint8Array; mode?: number };

/** Fixed timestamp for every entry: 1980-01-01 00:00:00, the earliest DOS time (local time as zip stores it). */
export const ZIP_EPOCH = new Date(1980, 0, 1, 0, 0, 0);

/**
 * Writes a deterministic zip with yazl: entries sorted by name (byte order), every mtime
 * {@link ZIP_EPOCH}, mode 0755 regular file unless given, DOS timestamps only (no extended-timestamp
 * extra field), deflate. Same inputs → same bytes, whatever the files' mtimes, owners or paths.
 * The archive is written to `<outPath>.tmp-<pid>` and renamed into place, so a reader never sees
 * a partial zip. Format: PKWARE APPNOTE.TXT (as written by yazl).
 * @param entries archive entries; names must be unique relative paths
 * @param outPath destination file
 * @returns size of the written zip in bytes
 * @throws Error on duplicate/absolute entry names; fs errors for unreadable inputs
 */
export async function writeDeterministicZip(entries: ZipEntry[], outPath: string): Promise<number> {
  const names = new Set<string>();
  for (const e of entries) {
    if (e.name.startsWith('/') || e.name.split('/').includes('..')) throw new Error(`zip entry name must be relative: "${e.name}"`);
    if (names.has(e.name)) throw new Error(`duplicate zip entry "${e.name}"`);
    names.add(e.name);
  }
  const sorted = [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const zip = new ZipFile();
  for (const e of sorted) {
    const opts = { mtime: ZIP_EPOCH, mode: 0o100000 | (e.mode ?? 0o755), compress: true, forceDosTimestamp: true };
    if ('path' in e) zip.addFile(e.path, e.name, opts);
    else zip.addBuffer(Buffer.from(e.bytes), e.name, opts);
  }
  const tmp = `${outPath}.tmp-${process.pid}`;
  try {
    await new Promise<void>((resolve, reject) => {
      const out = createWriteStream(tmp);
      out.on('error', reject);
      out.on('close', () => resolve());
      zip.outputStream.on('error', reject);
      zip.outputStream.pipe(out);
      zip.end();
    });
    await rename(tmp, outPath);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  return (await stat(outPath)).size;
}

/** Reads one entry of a zip into memory (yauzl): the one zip reader (image assembly, tests). @throws Error when the entry is missing */
export function readZipEntry(zipPath: string, name: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    yauzl.open(zipPath, { lazyEntries: true }, (err, zf) => {
      if (err || !zf) return reject(err ?? new Error(`cannot open ${zipPath}`));
      let found = false;
      zf.on('entry', (entry: yauzl.Entry) => {
        if (entry.fileName !== name) return zf.readEntry();
        found = true;
        zf.openReadStream(entry, (e2, rs) => {
          if (e2 || !rs) return reject(e2);
          const chunks: Buffer[] = [];
          rs.on('data', (c: Buffer) => chunks.push(c));
          rs.on('end', () => {
            zf.close();
            resolve(Buffer.concat(chunks));
          });
          rs.on('error', reject);
        });
      });
      zf.on('end', () => {
        if (!found) reject(new Error(`${zipPath} has no entry "${name}"`));
      });
      zf.on('error', reject);
      zf.readEntry();
    });
  });
}
