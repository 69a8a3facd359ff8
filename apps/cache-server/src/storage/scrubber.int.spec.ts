import { buffer } from 'node:stream/consumers';
import { closeSync, fstatSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { captureLogger, type MotoBucket, nxLikeBody, sha256Hex, startMotoBucket, newCacheHash } from '@buildonce/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCacheStore } from '../config';
import { startServer } from '../start';
import { parseTokens } from '../tokens';
import type { CacheBackend } from './backend';
import { CacheStore, recordKey, type EntryRecord } from './cache-store';
import { FsCacheBackend, fileIdentity } from './fs-backend';
import { S3CacheBackend } from './s3-backend';
import { Pacer, Scrubber } from './scrubber';

const MAX = 64 * 1024 * 1024;
const MiB = 1024 * 1024;
const newHash = newCacheHash;

const readAll = (s: Readable): Promise<Buffer> => buffer(s);

async function recordOf(store: CacheStore, hash: string): Promise<EntryRecord> {
  return JSON.parse((await store.backend.getRecord(recordKey('trusted', hash)))!.toString()) as EntryRecord;
}

interface Fixture {
  name: string;
  backend(prefix: string): CacheBackend;
  /**
   * Flips one byte of a stored blob the way bit rot does: for the directory store the record is then given the
   * blob's new identity, so GETs (which trust a matching identity) cannot tell; only re-hashing can.
   */
  rot(store: CacheStore, hash: string): Promise<void>;
  quarantined(prefix: string): Promise<string[]>;
}

describe('scrubber: re-hashes blobs at rest at a bounded rate and quarantines mismatches', () => {
  let root: string;
  let s3: S3Client;
  const bucket = 'cache-scrub';
  let mb: MotoBucket | undefined;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'cache-scrub-'));
    mb = await startMotoBucket(bucket);
    s3 = mb.s3;
  });
  afterAll(async () => {
    await mb?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  const fixtures: Fixture[] = [
    {
      name: 'directory',
      backend: (prefix) => new FsCacheBackend(join(root, prefix)),
      async rot(store, hash) {
        const backend = store.backend as FsCacheBackend;
        const rec = await recordOf(store, hash);
        const fd = openSync(backend.pathOf(rec.blob), 'r+');
        const b = readFileSync(backend.pathOf(rec.blob));
        writeSync(fd, Buffer.from([b[b.length >> 1]! ^ 0x01]), 0, 1, b.length >> 1);
        const identity = fileIdentity(fstatSync(fd, { bigint: true }));
        closeSync(fd);
        const rk = recordKey('trusted', hash);
        await backend.delete(rk);
        await backend.putRecordIfAbsent(rk, Buffer.from(JSON.stringify({ ...rec, identity }) + '\n'));
      },
      async quarantined(prefix) {
        try {
          return readdirSync(join(root, prefix, 'v1', 'trusted', 'quarantine'));
        } catch {
          return [];
        }
      },
    },
    {
      name: 's3 (moto_server)',
      backend: (prefix) => new S3CacheBackend({ bucket, prefix, maxBytes: MAX, spoolDir: tmpdir(), client: s3 }),
      async rot(store, hash) {
        const rec = await recordOf(store, hash);
        const Key = `${(store.backend as S3CacheBackend).s3Key(rec.blob)}`;
        const b = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key }))).Body!.transformToByteArray());
        b[b.length >> 1] = b[b.length >> 1]! ^ 0x01;
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: b }));
      },
      async quarantined(prefix) {
        const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/v1/trusted/quarantine/` }));
        return (out.Contents ?? []).map((o) => o.Key!);
      },
    },
  ];

  describe.each(fixtures)('$name backend', (fx) => {
    it('a flipped byte is found, quarantined and logged; good entries stay; the key can be stored again', async () => {
      const prefix = `flip-${newHash()}`;
      const corrupt: string[] = [];
      const store = new CacheStore(fx.backend(prefix), { maxBytes: MAX, onCorrupt: (c) => corrupt.push(`${c.hash}: ${c.reason}`) });
      const good = newHash();
      const bad = newHash();
      const goodBody = nxLikeBody(300_000);
      const badBody = nxLikeBody(3 * MiB);
      expect((await store.put('trusted', good, Readable.from([goodBody]), goodBody.length)).status).toBe('stored');
      expect((await store.put('trusted', bad, Readable.from([badBody]), badBody.length)).status).toBe('stored');
      await fx.rot(store, bad);

      const pass = await new Scrubber(store, { mibPerSecond: 1000 }).runPass();
      expect(pass).toMatchObject({ ok: 1, corrupt: 1, gone: 0 });
      expect(corrupt).toHaveLength(1);
      expect(corrupt[0]).toMatch(new RegExp(`^${bad}: scrub: blob .* has sha256 [0-9a-f]{64} at rest, record says ${sha256Hex(badBody)}`));
      expect(await fx.quarantined(prefix)).toHaveLength(1);
      expect(await store.get(['trusted'], bad)).toEqual({ status: 'miss', corrupt: [] });
      const hit = await store.get(['trusted'], good);
      expect(hit.status).toBe('hit');
      if (hit.status === 'hit') expect(sha256Hex(await readAll(hit.stream))).toBe(sha256Hex(goodBody));
      // repairable, and the next pass finds nothing wrong
      expect((await store.put('trusted', bad, Readable.from([badBody]), badBody.length)).status).toBe('stored');
      expect(await new Scrubber(store, { mibPerSecond: 1000 }).runPass()).toMatchObject({ ok: 2, corrupt: 0 });
    });

    it('honours the rate: a pass over N MiB at R MiB/s takes at least about N/R seconds', async () => {
      const prefix = `rate-${newHash()}`;
      const store = new CacheStore(fx.backend(prefix), { maxBytes: MAX });
      let total = 0;
      for (let i = 0; i < 3; i++) {
        const body = nxLikeBody(MiB);
        total += body.length;
        expect((await store.put('trusted', newHash(), Readable.from([body]), body.length)).status).toBe('stored');
      }
      const rate = 2; // MiB/s: ~1.5 s for the ~3 MiB stored
      const t0 = performance.now();
      const pass = await new Scrubber(store, { mibPerSecond: rate }).runPass();
      const ms = performance.now() - t0;
      expect(pass).toMatchObject({ ok: 3, corrupt: 0, bytes: total });
      // the pacer lets the first chunk (at most 256 KiB) through before it waits
      const floorMs = ((total - 256 * 1024) / (rate * MiB)) * 1000;
      expect(ms).toBeGreaterThanOrEqual(floorMs * 0.95);
    });
  });

  it('Pacer: N bytes at R bytes/s are released no sooner than N/R', async () => {
    const p = new Pacer(1_000_000);
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) await p.take(30_000);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
  });

  it('runs in the server (BUILDONCE_CACHE_SCRUB_MIB_PER_S), exports its progress in /metrics, and the rotten entry is a 404', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cache-scrub-server-'));
    const logs = captureLogger();
    const server = await startServer(
      {
        port: 0,
        host: '127.0.0.1',
        maxBytes: MAX,
        store: parseCacheStore(dir, '/'),
        tokens: parseTokens('tok-rw-123456:read-write'),
        spoolDir: tmpdir(),
        shutdownTimeoutMs: 5000,
        scrubMibPerSecond: 64,
      },
      logs.logger,
      { scrubPauseMs: 50 },
    );
    try {
      const auth = { authorization: 'Bearer tok-rw-123456' };
      const hash = newHash();
      const body = nxLikeBody(100_000);
      expect((await fetch(`${server.url}/v1/cache/${hash}`, { method: 'PUT', headers: auth, body })).status).toBe(200);
      expect((await fetch(`${server.url}/v1/cache/${hash}`, { headers: auth })).status).toBe(200);
      await fixtures[0]!.rot(server.store, hash);
      const metric = async (name: string) => {
        const text = await (await fetch(`${server.url}/metrics`)).text();
        return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
      };
      for (let i = 0; i < 100 && !(await metric('buildonce_cache_scrub_checked_entries\\{result="corrupt"\\}')); i++)
        await new Promise((r) => setTimeout(r, 50));
      expect(await metric('buildonce_cache_scrub_checked_entries\\{result="corrupt"\\}')).toBe(1);
      expect(await metric('buildonce_cache_scrub_checked_bytes')).toBeGreaterThanOrEqual(body.length);
      expect(await metric('buildonce_cache_scrub_rate_bytes_per_second')).toBe(64 * MiB);
      for (let i = 0; i < 100 && !(await metric('buildonce_cache_scrub_passes')); i++) await new Promise((r) => setTimeout(r, 50));
      expect(await metric('buildonce_cache_scrub_passes')).toBeGreaterThanOrEqual(1);
      expect(await metric('buildonce_cache_scrub_last_pass_end_seconds')).toBeGreaterThan(Date.now() / 1000 - 60);
      expect((await fetch(`${server.url}/v1/cache/${hash}`, { headers: auth })).status).toBe(404);
      expect(logs.records().some((r) => r.level === 50 && r.hash === hash && /scrub: /.test(String(r.reason)))).toBe(true);
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
