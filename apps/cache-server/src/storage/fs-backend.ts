import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { close as closeCb, constants, createReadStream, createWriteStream, fstat as fstatCb, open as openCb, type BigIntStats } from 'node:fs';
import { access, link, mkdir, open, readFile, rename, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pipeline } from 'node:stream/promises';
import { FsBlobStore, StoreAccessError } from '@buildonce/store';
import { type BlobIdentity, type CacheBackend, type VerifiedRead } from './backend';
import { IN_MEMORY_VERIFY_MAX, VerifyingStream } from './verify';

/** Reads up to `size` bytes from the start of `fh` into one buffer (shorter when the file is). */
async function readFully(fh: FileHandle, size: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(size);
  let off = 0;
  while (off < buf.length) {
    const { bytesRead } = await fh.read(buf, off, buf.length - off, off);
    if (bytesRead === 0) break;
    off += bytesRead;
  }
  return buf.subarray(0, off);
}

/** `open(path, 'wx', 0o644)` with the callback API: a plain descriptor for a callback-API write stream. */
function openFd(path: string): Promise<number> {
  return new Promise((resolve, reject) => openCb(path, 'wx', 0o644, (err, fd) => (err ? reject(err) : resolve(fd))));
}

function fstatBig(fd: number): Promise<BigIntStats> {
  return new Promise((resolve, reject) => fstatCb(fd, { bigint: true }, (err, st) => (err ? reject(err) : resolve(st))));
}

/** The identity of an open file (see BlobIdentity): what a GET compares with the record before streaming. */
export function fileIdentity(st: BigIntStats): Extract<BlobIdentity, { kind: 'file' }> {
  return { kind: 'file', dev: String(st.dev), ino: String(st.ino), size: Number(st.size), mtimeNs: String(st.mtimeNs) };
}

/** Why `actual` is not the recorded identity, or undefined when it is. */
export function identityMismatch(recorded: BlobIdentity, actual: Extract<BlobIdentity, { kind: 'file' }>): string | undefined {
  if (recorded.kind !== 'file') return `the record names an ${recorded.kind} object, not a file`;
  for (const f of ['dev', 'ino', 'size', 'mtimeNs'] as const) {
    if (String(recorded[f]) !== String(actual[f]))
      return `${f} is ${actual[f]}, record says ${recorded[f]}: the blob was replaced or modified since it was written`;
  }
  return undefined;
}

/**
 * Directory backend. Records are written create-only (temp file + `link`, which fails with EEXIST instead of
 * replacing); blobs are streamed to their unique path opened with `wx` before the body is read. Nothing is
 * fsynced: a cache may lose entries in a power loss; a torn blob or record is a miss (quarantined), never wrong
 * bytes. A GET of a record with an identity (device, inode, size, mtime recorded at write time) checks it on the
 * open descriptor (fstat) and streams the blob without re-hashing (the scrubber re-hashes at rest); records
 * without one (older) are verified by sha256: up to IN_MEMORY_VERIFY_MAX read once and hashed before their
 * first byte is sent, larger ones hashed while they stream with the last chunk held back until the sha256
 * matches (VerifyingStream).
 */
export class FsCacheBackend implements CacheBackend {
  readonly url: string;
  private readonly records: FsBlobStore;

  constructor(readonly root: string) {
    this.url = pathToFileURL(root).href;
    this.records = new FsBlobStore({ kind: 'file', root, url: this.url });
  }

  /** Absolute path of a key (for tests and operators). */
  pathOf(key: string): string {
    return join(this.root, ...key.split('/'));
  }

  async check(): Promise<void> {
    try {
      await mkdir(this.root, { recursive: true });
      await access(this.root, constants.W_OK | constants.R_OK);
    } catch (e) {
      throw new StoreAccessError(`cache directory ${this.root} is not usable: ${(e as Error).message}`);
    }
  }

  async writeBlob(key: string, body: Readable): Promise<BlobIdentity> {
    const path = this.pathOf(key);
    let fd: number;
    try {
      // `wx` never follows or replaces an existing file. The file is open BEFORE the body is read, so a body
      // that fails at once cannot race the open: whatever happens below, the file exists and is removed here.
      fd = await openFd(path).catch(async (e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
        await mkdir(dirname(path), { recursive: true });
        return openFd(path);
      });
    } catch (e) {
      body.resume();
      throw new StoreAccessError(`create ${path} in ${this.root} failed: ${(e as Error).message}`);
    }
    // callback-API write stream on the descriptor (FileHandle.write costs far more main-thread CPU per chunk).
    // The descriptor stays open past the last write so its fstat (device, inode, size, mtime) is the identity
    // of exactly what was written. No fsync: a blob torn by a power loss has another size or mtime than its
    // record says (a miss), and the scrubber re-hashes what survives.
    // From here the stream owns the descriptor and is its only closer: destroying an fs stream closes its
    // descriptor even with `autoClose: false` (pipeline destroys it on any error), and a second close could hit
    // a number the process has reused for a socket meanwhile, which makes libuv abort the whole server.
    const out = createWriteStream(path, { fd, autoClose: false });
    const closeOut = async () => {
      out.destroy();
      if (!out.closed) await new Promise<void>((r) => out.once('close', () => r()));
    };
    try {
      await pipeline(body, out);
      const st = await fstatBig(fd);
      await closeOut();
      return fileIdentity(st);
    } catch (e) {
      await closeOut();
      await unlink(path).catch(() => undefined);
      throw e;
    }
  }

  async readRaw(key: string): Promise<Readable | undefined> {
    const path = this.pathOf(key);
    const s = createReadStream(path, { highWaterMark: 256 * 1024 });
    try {
      await new Promise<void>((resolve, reject) => {
        s.once('open', () => resolve());
        s.once('error', reject);
      });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new StoreAccessError(`cannot open ${path}: ${(e as Error).message}`);
    }
    return s;
  }

  async readVerified(key: string, expected: { size: number; sha256: string; identity?: BlobIdentity }): Promise<VerifiedRead> {
    const path = this.pathOf(key);
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { status: 'missing' };
      throw new StoreAccessError(`cannot open ${path}: ${(e as Error).message}`);
    }
    try {
      const st = await fh.stat({ bigint: true });
      if (Number(st.size) !== expected.size) {
        await fh.close();
        return { status: 'corrupt', reason: `${path} has ${st.size} bytes, record says ${expected.size}` };
      }
      if (expected.identity) {
        // The descriptor checked is the one streamed from: a file swapped under the name after this point
        // is not what gets sent. Same identity = the bytes hashed when written (the scrubber covers bit rot).
        const wrong = identityMismatch(expected.identity, fileIdentity(st));
        if (wrong) {
          await fh.close();
          return { status: 'corrupt', reason: `${path}: ${wrong}` };
        }
        // streamed in pooled chunks at every size, as a bare file server does: reading small blobs whole first
        // cost a 1 MiB allocation per GET (bench/cache-server.sh: ~1.5x the floor's CPU for 1 MiB GETs)
        const src = fh.createReadStream({ start: 0, autoClose: true, highWaterMark: 256 * 1024 });
        return { status: 'ok', stream: src, size: expected.size, identityMatched: true };
      }
      if (expected.size <= IN_MEMORY_VERIFY_MAX) {
        // small entries: one read, verified before the first byte is sent (a mismatch is a clean 404)
        const buf = await readFully(fh, expected.size);
        await fh.close();
        const sha = createHash('sha256').update(buf).digest('hex');
        if (buf.length !== expected.size || sha !== expected.sha256)
          return { status: 'corrupt', reason: `${path} has sha256 ${sha}, record says ${expected.sha256}` };
        return { status: 'ok', stream: Readable.from([buf]), size: expected.size };
      }
      // large entries: one pass, hashed as the bytes go out; the last chunk is held back until it verifies
      const verify = new VerifyingStream(expected, path);
      const src = fh.createReadStream({ start: 0, autoClose: true, highWaterMark: 256 * 1024 });
      src.on('error', (e) => verify.destroy(e));
      verify.on('close', () => src.destroy());
      return { status: 'ok', stream: src.pipe(verify), size: expected.size, verifiedWhileStreaming: true };
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw new StoreAccessError(`cannot read ${path}: ${(e as Error).message}`);
    }
  }

  /**
   * Create-only record write: a temp file in `<root>/.tmp/` linked into place (`link` fails with EEXIST instead of
   * replacing), so a record is never seen partially. No fsync: a record lost or torn by a power loss reads as a
   * miss or an invalid record (quarantined), never as a wrong entry.
   */
  putRecordIfAbsent(key: string, bytes: Uint8Array): Promise<'created' | 'exists'> {
    return this.io(`write record ${key}`, async () => {
      const final = this.pathOf(key);
      const tmp = join(this.root, '.tmp', `rec-${process.pid}-${randomBytes(8).toString('hex')}`);
      try {
        await writeFile(tmp, bytes, { flag: 'wx' });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        await mkdir(dirname(tmp), { recursive: true });
        await writeFile(tmp, bytes, { flag: 'wx' });
      }
      try {
        try {
          await link(tmp, final);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'EEXIST') return 'exists';
          if (code !== 'ENOENT') throw e;
          await mkdir(dirname(final), { recursive: true });
          await link(tmp, final);
        }
        return 'created';
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') return 'exists';
        throw e;
      } finally {
        await unlink(tmp).catch(() => undefined);
      }
    });
  }

  async getRecord(key: string): Promise<Buffer | undefined> {
    return (await this.io(`read record ${key}`, () => this.records.getBytes(key)))?.bytes;
  }

  async hasRecord(key: string): Promise<boolean> {
    return !!(await this.io(`stat record ${key}`, () => this.records.head(key)));
  }

  delete(key: string): Promise<void> {
    return this.io(`delete ${key}`, () => this.records.delete(key));
  }

  async *listRecords(prefix: string): AsyncIterable<{ key: string; mtimeMs: number; bytes: Buffer }> {
    for await (const o of this.records.list(prefix)) {
      if (!/\/records\/[^/]+\.json$/.test(o.key)) continue;
      const got = await this.records.getBytes(o.key).catch(() => undefined);
      if (got) yield { key: o.key, mtimeMs: o.lastModified.getTime(), bytes: got.bytes };
    }
  }

  /**
   * Compare-and-delete without locks: the record is renamed aside (atomic: whatever is there at that instant
   * moves), then compared; a record that is not the expected one is linked back create-only (if an even newer
   * one appeared meanwhile, that one stays). A concurrent GET may see a miss during that instant, never a loss.
   */
  deleteRecordIfSame(key: string, bytes: Uint8Array): Promise<'deleted' | 'changed' | 'missing'> {
    return this.io(`delete record ${key}`, async () => {
      const path = this.pathOf(key);
      const aside = join(this.root, '.tmp', `aside-${process.pid}-${randomBytes(8).toString('hex')}`);
      await mkdir(dirname(aside), { recursive: true });
      try {
        await rename(path, aside);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
        throw e;
      }
      try {
        const moved = await readFile(aside);
        if (moved.equals(bytes)) return 'deleted';
        await link(aside, path).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'EEXIST') throw e;
        });
        return 'changed';
      } finally {
        await unlink(aside).catch(() => undefined);
      }
    });
  }

  private async io<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof StoreAccessError) throw e;
      if (e instanceof StoreAccessError) throw new StoreAccessError(e.message);
      throw new StoreAccessError(`${what} in ${this.root} failed: ${(e as Error).message}`);
    }
  }
}
