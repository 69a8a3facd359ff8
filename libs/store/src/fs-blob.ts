import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, link, mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffDelay, type Backoff } from '@buildonce/retry';
import { assertKey, assertKeyPrefix, type BlobStore, type CasResult, type ObjectInfo } from './blob';
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

/** Waiting for another writer's per-key lock: 10 ms growing by 1.5 up to 50 ms, each between half and all of it. */
const KEY_LOCK_POLL: Backoff = { minTimeout: 10, factor: 1.5, maxTimeout: 50, jitter: 'half' };

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

  /**
   * Maps an I/O error of a write to a one-line StoreAccessError naming the key and the fix (disk full,
   * read-only, permissions); other errors pass through unchanged.
   */
  private ioError(e: unknown, key: string): Error {
    const code = (e as NodeJS.ErrnoException)?.code;
    const fix: Record<string, string> = {
      ENOSPC: 'no space left on device: free space on the disk holding the store',
      EDQUOT: "disk quota exceeded: free space or raise the quota of the store's disk",
      EROFS: "the store's filesystem is read-only: use a writable store directory",
      EACCES: 'permission denied: make the store directory writable by this user',
      EPERM: 'operation not permitted: make the store directory writable by this user',
    };
    if (code && fix[code]) return new StoreAccessError(`cannot write ${this.uriOf(key)} (${code}): ${fix[code]} (${this.root})`);
    return e instanceof Error ? e : new Error(String(e));
  }

  /** Runs `write(tmp)` on a fresh temp path; the temp file never outlives a failure. */
  private async withTemp<T>(key: string, write: (tmp: string) => Promise<T>): Promise<T> {
    const tmp = await this.tempPath();
    try {
      return await write(tmp);
    } catch (e) {
      throw this.ioError(e, key);
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
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
    }
  }

  async putFileIfAbsent(key: string, path: string, opts: { size: number; onProgress?: (l: number, t: number) => void }): Promise<'created' | 'exists'> {
    const final = this.pathOf(key);
    if (await exists(final)) return 'exists';
    const r = await this.withTemp(key, async (tmp) => {
      await copyFile(path, tmp);
      return this.linkIntoPlace(tmp, final);
    });
    opts.onProgress?.(opts.size, opts.size);
    return r;
  }

  async putBytesIfAbsent(key: string, bytes: Uint8Array): Promise<'created' | 'exists'> {
    const final = this.pathOf(key);
    return this.withTemp(key, async (tmp) => {
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(bytes);
      } finally {
        await fh.close();
      }
      return this.linkIntoPlace(tmp, final);
    });
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
      await this.withTemp(key, async (tmp) => {
        const fh = await open(tmp, 'w');
        try {
          await fh.writeFile(bytes);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await mkdir(dirname(final), { recursive: true });
        await rename(tmp, final);
      });
      await fsyncPath(dirname(final)).catch(() => undefined);
      return { status: 'written', etag: etagOf(bytes) };
    } finally {
      await release();
    }
  }

  /**
   * Exclusive lock per key; waits up to 60 s, breaks locks older than 30 s (crashed writer).
   * Breaking is itself exclusive: a breaker takes `<lock>.break` (`wx`), re-checks under it that the
   * lock is still the stale one, and only then unlinks it — so a breaker that saw the old lock can
   * never remove the fresh lock another breaker has just made (two CAS winners).
   * A `.break` file older than 30 s (a breaker that crashed in those few ms) is removed.
   */
  private async lock(key: string): Promise<() => Promise<void>> {
    const dir = join(this.root, LOCK_DIR);
    await mkdir(dir, { recursive: true }).catch((e) => {
      throw this.ioError(e, key);
    });
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
          await this.breakStaleLock(lockPath, st.ino, st.mtimeMs);
          continue;
        }
        if (Date.now() > deadline) throw new StoreAccessError(`timed out waiting for lock ${lockPath} on ${key}`);
        await sleep(backoffDelay(attempt + 1, KEY_LOCK_POLL));
      }
    }
  }

  /** Unlinks `lockPath` only if it is still the stale lock (same inode and mtime) seen by the caller. */
  private async breakStaleLock(lockPath: string, ino: number, mtimeMs: number): Promise<void> {
    const breakPath = `${lockPath}.break`;
    let fh;
    try {
      fh = await open(breakPath, 'wx');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const b = await stat(breakPath).catch(() => undefined);
      if (b && Date.now() - b.mtimeMs > STALE_LOCK_MS) await unlink(breakPath).catch(() => undefined);
      return; // another breaker is at work: go back to waiting for the lock
    }
    try {
      await fh.close();
      const now = await stat(lockPath).catch(() => undefined);
      if (now && now.ino === ino && now.mtimeMs === mtimeMs) await unlink(lockPath).catch(() => undefined);
    } finally {
      await unlink(breakPath).catch(() => undefined);
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
    assertKeyPrefix(prefix);
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

  async listFolders(prefix: string): Promise<string[]> {
    assertKeyPrefix(prefix);
    if (prefix && !prefix.endsWith('/')) throw new Error(`listFolders needs a prefix ending in "/", got "${prefix}"`);
    const dir = prefix ? join(this.root, ...prefix.slice(0, -1).split('/')) : this.root;
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    return entries.filter((e) => e.isDirectory() && (prefix || (e.name !== TMP_DIR && e.name !== LOCK_DIR))).map((e) => e.name);
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
