import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseCacheStore } from '../config';
import { startServer } from '../start';
import { captureLogger, nxLikeBody, sha256Hex } from '@buildonce/testing';
import { parseTokens } from '../tokens';
import { CacheStore } from './cache-store';
import { FsCacheBackend } from './fs-backend';

/** Bytes of every blob file under the store root (what the disk holds for entries). */
function blobBytes(root: string): number {
  let total = 0;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\/blobs\//.test(p)) total += statSync(p).size;
    }
  };
  walk(root);
  return total;
}

describe('BUILDONCE_CACHE_MAX_STORE_BYTES: least-recently-used eviction of the directory store', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'cache-cap-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const bodies = Array.from({ length: 9 }, (_, i) => nxLikeBody(100_000, `entry-${i}`));
  const size = Math.max(...bodies.map((b) => b.length));
  const cap = 5 * size + 1000;
  const hashes = bodies.map((_, i) => `77000${i}`);

  async function putAll(store: CacheStore, idx: number[]) {
    for (const i of idx) expect((await store.put('trusted', hashes[i]!, Readable.from([bodies[i]!]), bodies[i]!.length)).status).toBe('stored');
  }
  async function read(store: CacheStore, i: number) {
    const g = await store.get(['trusted'], hashes[i]!);
    expect(g.status).toBe('hit');
    if (g.status !== 'hit') return;
    const chunks: Buffer[] = [];
    for await (const c of g.stream) chunks.push(c as Buffer);
    expect(sha256Hex(Buffer.concat(chunks))).toBe(sha256Hex(bodies[i]!));
  }
  const present = async (store: CacheStore) => {
    const out: number[] = [];
    for (let i = 0; i < hashes.length; i++) if (await store.exists('trusted', hashes[i]!)) out.push(i);
    return out;
  };

  it('filling past the cap stays under it; the least recently READ entries go first', async () => {
    const evicted: string[] = [];
    const store = new CacheStore(new FsCacheBackend(root), { maxBytes: 1 << 30, maxStoreBytes: cap, onEvict: (e) => evicted.push(e.hash) });
    await store.init();
    await putAll(store, [0, 1, 2, 3, 4]);
    expect(await present(store)).toEqual([0, 1, 2, 3, 4]);
    await read(store, 0); // 0 is now the most recently used
    await read(store, 2);
    await putAll(store, [5, 6, 7]);
    expect(blobBytes(root)).toBeLessThanOrEqual(cap);
    expect(store.storeBytes).toBeLessThanOrEqual(cap);
    expect(await present(store)).toEqual([0, 2, 5, 6, 7]);
    expect(evicted).toEqual([hashes[1], hashes[3], hashes[4]]);

    // a restarted server rebuilds the index from disk and keeps honouring the cap
    const again = new CacheStore(new FsCacheBackend(root), { maxBytes: 1 << 30, maxStoreBytes: cap });
    await again.init();
    expect(again.storeBytes).toBe(store.storeBytes);
    await putAll(again, [8]);
    expect(blobBytes(root)).toBeLessThanOrEqual(cap);
    expect((await present(again)).length).toBe(5);
  });

  it('never evicts an entry while a GET streams it', async () => {
    const store = new CacheStore(new FsCacheBackend(root), { maxBytes: 1 << 30, maxStoreBytes: cap });
    await store.init();
    await putAll(store, [0, 1, 2, 3, 4]);
    const g = await store.get(['trusted'], hashes[0]!); // 0 is being sent...
    expect(g.status).toBe('hit');
    await read(store, 1);
    await read(store, 2);
    await read(store, 3);
    await read(store, 4); // ...and is the least recently used of all
    await putAll(store, [5]);
    expect(await present(store)).toEqual([0, 2, 3, 4, 5]); // 1 went instead
    if (g.status === 'hit') {
      const chunks: Buffer[] = [];
      for await (const c of g.stream) chunks.push(c as Buffer);
      expect(sha256Hex(Buffer.concat(chunks))).toBe(sha256Hex(bodies[0]!));
    }
    await putAll(store, [6]); // the GET is done: 0 is evictable again, and oldest
    expect(await present(store)).toEqual([2, 3, 4, 5, 6]);
  });

  it('the server exposes store bytes and evictions on /metrics, and refuses a body larger than the cap', async () => {
    const logs = captureLogger();
    const token = 'cap-test-rw-5e1a9c3d7b2f';
    const server = await startServer(
      {
        port: 0,
        host: '127.0.0.1',
        maxBytes: 1 << 30,
        maxStoreBytes: cap,
        store: parseCacheStore(root, '/'),
        tokens: parseTokens(`${token}:read-write`),
        spoolDir: tmpdir(),
        shutdownTimeoutMs: 5000,
      },
      logs.logger,
    );
    try {
      const put = (i: number, body = bodies[i]!) =>
        fetch(`${server.url}/v1/cache/${hashes[i]}`, { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body });
      for (let i = 0; i < 7; i++) expect((await put(i)).status).toBe(200);
      expect(blobBytes(root)).toBeLessThanOrEqual(cap);
      expect((await put(8, Buffer.concat(bodies))).status).toBe(413);
      const text = await (await fetch(`${server.url}/metrics`)).text();
      expect(text).toMatch(/^buildonce_cache_evictions_total 2$/m);
      const storeBytes = Number(/^buildonce_cache_store_bytes (\d+)$/m.exec(text)?.[1]);
      expect(storeBytes).toBe(blobBytes(root));
      expect(text).toMatch(/^buildonce_cache_rejected_bodies_total\{reason="too-large"\} 1$/m);
      expect(text).not.toContain(token);
      for (const h of hashes) expect(text).not.toContain(h);
    } finally {
      await server.close();
    }
  });
});
