import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from './fs-blob';
import { StoreAccessError } from './errors';
import { parseStoreUrl } from './url';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function store(root = mkdtempSync(join(tmpdir(), 'fs-blob-'))): FsBlobStore {
  dirs.push(root);
  return new FsBlobStore(parseStoreUrl(`file://${root}`) as Extract<ReturnType<typeof parseStoreUrl>, { kind: 'file' }>);
}

describe('FsBlobStore', () => {
  it('breaking a stale lock never lets two compare-and-swap writers win', async () => {
    let doubleWins = 0;
    for (let trial = 0; trial < 150; trial++) {
      const s = store();
      const key = 'releases/p/dev/current.json';
      const locks = join(s.root, '.locks');
      mkdirSync(locks, { recursive: true });
      const lockPath = join(locks, createHash('sha256').update(key).digest('hex') + '.lock');
      writeFileSync(lockPath, '12345');
      const old = new Date(Date.now() - 120_000);
      utimesSync(lockPath, old, old);
      const writers = Array.from({ length: 6 }, (_, i) => new FsBlobStore(s.location).putBytesIfMatch(key, Buffer.from(`writer ${i}`), null));
      const results = await Promise.all(writers);
      if (results.filter((r) => r.status === 'written').length !== 1) doubleWins++;
    }
    expect(doubleWins).toBe(0);
  });

  it('leaves no temp file when the disk is full (ENOSPC) and reports it as a store error', () => {
    const mnt = mkdtempSync(join(tmpdir(), 'fs-blob-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]);
    try {
      // run in a child so the test process never has its cwd or handles on the small filesystem
      const script = `
        const { FsBlobStore } = require(${JSON.stringify(join(__dirname, 'fs-blob.ts'))});
        const { parseStoreUrl } = require(${JSON.stringify(join(__dirname, 'url.ts'))});
        (async () => {
          const s = new FsBlobStore(parseStoreUrl('file://${mnt}/store'));
          const big = Buffer.alloc(256 * 1024, 1);
          const out = [];
          for (const f of [() => s.putBytesIfAbsent('a/b.json', big), () => s.putBytesIfMatch('a/c.json', big, null)]) {
            try { await f(); out.push('ok'); } catch (e) { out.push(e.name + ': ' + e.message); }
          }
          process.stdout.write(JSON.stringify(out));
        })();`;
      const out = JSON.parse(execFileSync(process.execPath, ['-r', '@swc-node/register', '-e', script], { encoding: 'utf8', cwd: __dirname }));
      for (const line of out) expect(line).toMatch(/^StoreAccessError: .*no space left on device.*store/i);
      expect(readdirSync(join(mnt, 'store', '.tmp'))).toEqual([]);
    } finally {
      execFileSync('umount', [mnt]);
      rmSync(mnt, { recursive: true, force: true });
    }
  });

  it('refuses list prefixes with "." or ".." segments instead of walking outside the store', async () => {
    const s = store();
    await s.putBytesIfAbsent('releases/p/dev/current.json', Buffer.from('{}'));
    const walk = async (prefix: string) => {
      const keys: string[] = [];
      for await (const o of s.list(prefix)) keys.push(o.key);
      return keys;
    };
    await expect(walk('releases/../x/')).rejects.toThrow(/invalid store key prefix "releases\/..\/x\/"/);
    await expect(walk('../')).rejects.toThrow(/invalid store key prefix/);
    await expect(walk('/etc/')).rejects.toThrow(/invalid store key prefix/);
    expect(await walk('releases/')).toEqual(['releases/p/dev/current.json']);
    expect(await walk('')).toEqual(['releases/p/dev/current.json']);
    expect(StoreAccessError).toBeDefined();
  });
});
