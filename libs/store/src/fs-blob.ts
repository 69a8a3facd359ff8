import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, link, mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { assertKey, type BlobStore, type CasResult, type ObjectInfo } from './blob';
import { StoreAccessError } from './errors';
import type { StoreLocation } from './url';

/** Directories inside the store root that hold in-flight temp files and locks (never listed). */
const TMP_DIR = '.tmp';
const LOCK_DIR = '.locks';
/** A lock older than this (ms) is considered abandoned by a crashed writer and broken. */
const STALE_LOCK_MS = 30_000;
const LOCK_WAIT_MS = 60_000;

function etagOf(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Filesystem backend (the embedded default store). Same semantics as S3: create-only keys are
 * written to `<root>/.tmp/`, fsynced, then hard-linked into place (`link` fails with EEXIST instead of
 * clobbering), so a key is written once and never seen partially. Compare-and-swap uses an
 * exclusive lock file (`open(…, 'wx')`) around read-compare-rename. ETags are the sha256 hex of content.
 */
export class FsBlobStore implements BlobStore {
  readonly root: string;
  constructor(readonly location: Extract<StoreLocation, { kind: 'file' }>) {
    this.root = location.root;
  }

  s3Object(): undefined {
    return undefined;
  }

  uriOf(key: string): string {
    const dir = key.endsWith('/');
    return pathToFileURL(this.pathOf(dir ? key.slice(0, -1) : key)).href + (dir ? '/' : '');
  }

  private pathOf(key: string): string {
    assertKey(key);
    return join(this.root, ...key.split('/'));
  }

  private async tempPath(): Promise<string> {
    const dir = join(this.root, TMP_DIR);
    try {
      await mkdir(dir, { recursive: true });
    } catch (e) {
      throw new StoreAccessError(`cannot create store directory ${this.root}: ${(e as Error).message}`);
    }
    return join(dir, `${process.pid}-${randomBytes(8).toString('hex')}`);
  }

  private async linkIntoPlace(tmp: string, final: string): Promise<'created' | 'exists'> {
    await fsyncPath(tmp);
    await mkdir(dirname(final), { recursive: true });
    try {
      await link(tmp, final);
      await fsyncPath(dirname(final)).catch(() => undefined);
      return 'created';
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return 'exists';
      throw e;
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
  }

  async putFileIfAbsent(key: string, path: string, opts: { size: number; onProgress?: (l: number, t: number) => void }): Promise<'created' | 'exists'> {
    const final = this.pathOf(key);
    if (await exists(final)) return 'exists';
    const tmp = await this.tempPath();
    await copyFile(path, tmp);
    const r = await this.linkIntoPlace(tmp, final);
    opts.onProgress?.(opts.size, opts.size);
    return r;
  }

  async putBytesIfAbsent(key: string, bytes: Uint8Array): Promise<'created' | 'exists'> {
    const final = this.pathOf(key);
    const tmp = await this.tempPath();
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(bytes);
    } finally {
      await fh.close();
    }
    return this.linkIntoPlace(tmp, final);
  }

  async putBytesIfMatch(key: string, bytes: Uint8Array, expectedEtag: string | null): Promise<CasResult> {
    const final = this.pathOf(key);
    const release = await this.lock(key);
    try {
      const current = await readFile(final).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return undefined;
        throw e;
      });
      const currentEtag = current ? etagOf(current) : null;
      if (currentEtag !== expectedEtag) return { status: 'precondition-failed' };
      const tmp = await this.tempPath();
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(bytes);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await mkdir(dirname(final), { recursive: true });
      await rename(tmp, final);
      await fsyncPath(dirname(final)).catch(() => undefined);
      return { status: 'written', etag: etagOf(bytes) };
    } finally {
      await release();
    }
  }

  /** Exclusive lock per key; waits up to 60 s, breaks locks older than 30 s (crashed writer). */
  private async lock(key: string): Promise<() => Promise<void>> {
    const dir = join(this.root, LOCK_DIR);
    await mkdir(dir, { recursive: true });
    const lockPath = join(dir, createHash('sha256').update(key).digest('hex') + '.lock');
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        const fh = await open(lockPath, 'wx');
        await fh.writeFile(String(process.pid));
        await fh.close();
        return () => unlink(lockPath).catch(() => undefined);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        const st = await stat(lockPath).catch(() => undefined);
        if (st && Date.now() - st.mtimeMs > STALE_LOCK_MS) {
          await unlink(lockPath).catch(() => undefined);
          continue;
        }
        if (Date.now() > deadline) throw new StoreAccessError(`timed out waiting for lock ${lockPath} on ${key}`);
        await sleep(Math.min(5 + attempt * 5, 50) + Math.random() * 10);
      }
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const st = await stat(this.pathOf(key)).catch(() => undefined);
    if (!st || !st.isFile()) return undefined;
    return { key, size: st.size, lastModified: st.mtime };
  }

  async getBytes(key: string): Promise<{ bytes: Buffer; etag: string } | undefined> {
    try {
      const bytes = await readFile(this.pathOf(key));
      return { bytes, etag: etagOf(bytes) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async getStream(key: string): Promise<Readable | undefined> {
    const p = this.pathOf(key);
    if (!(await exists(p))) return undefined;
    return createReadStream(p);
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const start = prefix ? join(this.root, ...prefix.replace(/\/+$/, '').split('/')) : this.root;
    const base = prefix.endsWith('/') || !prefix ? start : dirname(start);
    const stack: string[] = [base];
    while (stack.length) {
      const dir = stack.pop()!;
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const ent of entries) {
        const full = join(dir, ent.name);
        const rel = relative(this.root, full).split(sep).join('/');
        if (rel === TMP_DIR || rel === LOCK_DIR) continue;
        if (ent.isDirectory()) {
          if (rel.startsWith(prefix) || prefix.startsWith(rel + '/')) stack.push(full);
        } else if (ent.isFile() && rel.startsWith(prefix)) {
          const st = await stat(full).catch(() => undefined);
          if (st) yield { key: rel, size: st.size, lastModified: st.mtime };
        }
      }
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}
