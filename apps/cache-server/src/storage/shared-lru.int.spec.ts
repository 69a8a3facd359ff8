import { buffer } from 'node:stream/consumers';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { createS3Client } from '@buildonce/store';
import { type MotoServer, nxLikeBody, sha256Hex, startMoto } from '@buildonce/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheStore } from './cache-store';
import { S3CacheBackend } from './s3-backend';
import { SharedLru } from './shared-lru';

const MAX = 64 * 1024 * 1024;
const MINUTE = 60_000;

const readAll = (s: Readable): Promise<Buffer> => buffer(s);

/**
 * Three replicas (each its own S3 client, CacheStore and SharedLru) on one moto_server bucket. Cycles are driven
 * by hand and the replicas share a fake clock, so recency, protection and lease expiry are exact.
 */
describe('LRU cap shared by replicas on one S3 bucket (moto_server)', () => {
  let moto: MotoServer;
  const clients: S3Client[] = [];
  const bucket = 'cache-shared-lru';
  let clock = Date.now();
  let prefixN = 0;

  beforeAll(async () => {
    moto = await startMoto();
    const c = createS3Client({ env: moto.env });
    clients.push(c);
    await c.send(new CreateBucketCommand({ Bucket: bucket }));
  });
  afterAll(async () => {
    for (const c of clients) c.destroy();
    await moto?.stop();
  });

  function replicas(cap: number) {
    const prefix = `lru-${++prefixN}`;
    return [0, 1, 2].map((i) => {
      const client = createS3Client({ env: moto.env });
      clients.push(client);
      const backend = new S3CacheBackend({ bucket, prefix, maxBytes: MAX, spoolDir: tmpdir(), client });
      const evicted: string[] = [];
      const shared = new SharedLru(backend, {
        maxStoreBytes: cap,
        cycleMs: MINUTE,
        protectMs: MINUTE,
        leaseMs: 5 * MINUTE,
        replicaId: `r${i}`,
        now: () => clock,
        onEvict: (e) => evicted.push(e.hash),
      });
      const store = new CacheStore(backend, { maxBytes: MAX, shared });
      return { store, shared, evicted };
    });
  }

  it('keeps the stored bytes under the cap by evicting the least recently used entries, with recency from every replica', async () => {
    const size = 100_000;
    const bodies = Array.from({ length: 8 }, (_, i) => nxLikeBody(size, `entry-${i}`));
    const cap = 5 * bodies[0]!.length + 1000;
    const r = replicas(cap);
    const hashes = bodies.map((_, i) => `${Date.now()}${i}`);
    // stored in order 0..7 through the three replicas (S3 LastModified orders them when never read)
    for (const [i, b] of bodies.entries()) {
      expect((await r[i % 3]!.store.put('trusted', hashes[i]!, Readable.from([b]), b.length)).status).toBe('stored');
      await new Promise((res) => setTimeout(res, 1100)); // S3 LastModified has 1 s resolution
    }
    clock = Date.now() + 10 * MINUTE;
    // replica 1 serves the three OLDEST entries: they become the most recently used
    for (const i of [0, 1, 2]) {
      const g = await r[1]!.store.get(['trusted'], hashes[i]!);
      expect(g.status).toBe('hit');
      if (g.status === 'hit') await readAll(g.stream);
    }
    await r[1]!.shared.flush();
    clock += 10 * MINUTE; // past protectMs
    // replica 0 holds the lease and evicts: entries 3, 4, 5 (least recently used) go
    const out = await r[0]!.shared.cycle();
    expect(out.evicted).toBe(3);
    expect(r[0]!.evicted).toEqual([hashes[3], hashes[4], hashes[5]]);
    expect(out.storeBytes).toBeLessThanOrEqual(cap);
    for (const [i, h] of hashes.entries()) {
      const g = await r[2]!.store.get(['trusted'], h);
      expect(g.status, `entry ${i}`).toBe([3, 4, 5].includes(i) ? 'miss' : 'hit');
      if (g.status === 'hit') expect(sha256Hex(await readAll(g.stream))).toBe(sha256Hex(bodies[i]!));
      if (g.status === 'miss') expect(g.corrupt).toEqual([]);
    }
  }, 60_000);

  it('one evictor at a time: the lease is exclusive until it expires, then another replica takes it over', async () => {
    const r = replicas(1_000_000);
    expect(await r[0]!.shared.acquireLease()).toBe(true);
    expect(await r[1]!.shared.acquireLease()).toBe(false);
    expect(await r[2]!.shared.acquireLease()).toBe(false);
    expect(await r[0]!.shared.acquireLease()).toBe(true); // renewal
    clock += 6 * MINUTE; // r0 died without renewing
    const race = await Promise.all([r[1]!.shared.acquireLease(), r[2]!.shared.acquireLease()]);
    expect(race.filter(Boolean)).toHaveLength(1);
    expect(await r[0]!.shared.acquireLease()).toBe(false);
    expect((await r[1]!.shared.cycle()).evicted + (await r[2]!.shared.cycle()).evicted).toBe(0);
  });

  it('never evicts an entry another replica is streaming, however old its last completed read', async () => {
    const body = nxLikeBody(300_000, 'streamed');
    const other = nxLikeBody(300_000, 'other');
    const r = replicas(body.length + 1000);
    const streamed = `${Date.now()}1`;
    const idle = `${Date.now()}2`;
    expect((await r[0]!.store.put('trusted', streamed, Readable.from([body]), body.length)).status).toBe('stored');
    await new Promise((res) => setTimeout(res, 1100));
    expect((await r[0]!.store.put('trusted', idle, Readable.from([other]), other.length)).status).toBe('stored');
    clock = Date.now() + 10 * MINUTE;
    // replica 2 starts sending `streamed` (the least recently stored) to a slow client and keeps it open
    const g = await r[2]!.store.get(['trusted'], streamed);
    expect(g.status).toBe('hit');
    clock += 30 * MINUTE;
    await r[2]!.shared.flush(); // its access log says: still streaming, as of now
    const out = await r[1]!.shared.cycle();
    // over the cap, the least recently stored is protected: the other entry goes instead
    expect(r[1]!.evicted).toEqual([idle]);
    expect(out.storeBytes).toBeLessThanOrEqual(body.length + 1000);
    if (g.status === 'hit') expect(sha256Hex(await readAll(g.stream))).toBe(sha256Hex(body));
    expect((await r[0]!.store.get(['trusted'], streamed)).status).toBe('hit');
  });
});
