import { buffer } from 'node:stream/consumers';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createS3Client } from '@buildonce/store';
import { type MotoBucket, type MotoServer, nxLikeBody, sha256Hex, startMotoBucket, newCacheHash } from '@buildonce/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CacheBackend } from './backend';
import { CacheStore, recordKey, type EntryRecord } from './cache-store';
import { FsCacheBackend } from './fs-backend';
import { S3CacheBackend } from './s3-backend';

const MAX = 64 * 1024 * 1024;
const newHash = newCacheHash;

const readAll = (s: Readable): Promise<Buffer> => buffer(s);

async function put(store: CacheStore, hash: string, body: Buffer, namespace = 'trusted') {
  return store.put(namespace, hash, Readable.from([body]), body.length);
}

async function blobOf(store: CacheStore, hash: string, namespace = 'trusted'): Promise<string> {
  return (JSON.parse((await store.backend.getRecord(recordKey(namespace, hash)))!.toString()) as EntryRecord).blob;
}

/**
 * Holds the FIRST readVerified call after it has read (and judged) the blob until `release()`: a GET that is
 * slow between verifying and quarantining, as under load.
 */
function gateFirstRead(backend: CacheBackend): { reached: Promise<void>; release: () => void } {
  const orig = backend.readVerified.bind(backend);
  let release!: () => void;
  let reachedResolve!: () => void;
  const reached = new Promise<void>((r) => (reachedResolve = r));
  const gate = new Promise<void>((r) => (release = r));
  let first = true;
  backend.readVerified = async (key, expected) => {
    const r = await orig(key, expected);
    if (first) {
      first = false;
      reachedResolve();
      await gate;
    }
    return r;
  };
  return { reached, release };
}

interface Fixture {
  name: string;
  backend(): CacheBackend;
  corrupt(key: string): Promise<void>;
}

describe('CacheStore under races and lost responses', () => {
  let root: string;
  let moto: MotoServer;
  let s3: S3Client;
  let mb: MotoBucket | undefined;
  const bucket = 'cache-store-races';

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'cache-store-races-'));
    mb = await startMotoBucket(bucket);
    ({ moto, s3 } = mb);
  });
  afterAll(async () => {
    await mb?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  const fixtures: Fixture[] = [
    {
      name: 'directory',
      backend: () => new FsCacheBackend(root),
      async corrupt(key) {
        const p = new FsCacheBackend(root).pathOf(key);
        const b = readFileSync(p);
        b[b.length - 10] = b[b.length - 10]! ^ 0xff;
        writeFileSync(p, b);
      },
    },
    {
      name: 's3 (moto_server)',
      backend: () => new S3CacheBackend({ bucket, prefix: 'p', maxBytes: MAX, spoolDir: tmpdir(), client: s3 }),
      async corrupt(key) {
        const Key = `p/${key}`;
        const b = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key }))).Body!.transformToByteArray());
        b[b.length - 10] = b[b.length - 10]! ^ 0xff;
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: b }));
      },
    },
  ];

  describe.each(fixtures)('$name backend', (fx) => {
    it('a late quarantine never deletes the entry a trusted builder stored after the first quarantine', async () => {
      const backend = fx.backend();
      const store = new CacheStore(backend, { maxBytes: MAX });
      const hash = newHash();
      const body = nxLikeBody(3000);
      expect((await put(store, hash, body)).status).toBe('stored');
      await fx.corrupt(await blobOf(store, hash));

      const gate = gateFirstRead(backend);
      const slow = store.get(['trusted'], hash); // judges the entry corrupt, then stalls before quarantining
      await gate.reached;
      const fast = await store.get(['trusted'], hash); // quarantines the bad record
      expect(fast).toMatchObject({ status: 'miss', corrupt: [{ namespace: 'trusted' }] });
      expect((await put(store, hash, body)).status).toBe('stored'); // the repair
      gate.release();
      expect(await slow).toMatchObject({ status: 'miss', corrupt: [{ namespace: 'trusted' }] });

      const after = await store.get(['trusted'], hash);
      expect(after.status).toBe('hit');
      if (after.status === 'hit') expect(sha256Hex(await readAll(after.stream))).toBe(sha256Hex(body));
    });
  });

  it('S3: a record write whose response was lost (SDK retry answered 412) is recognised as our own, not a 409', async () => {
    // a proxy in front of moto_server that applies the first create-only record PUT and then drops the
    // connection instead of answering: the SDK retries, and the retry meets the record it wrote itself
    let dropped = 0;
    const upstream = new URL(moto.endpoint);
    const proxy: Server = createServer((req, res) => {
      const drop = req.method === 'PUT' && /\/records\//.test(req.url ?? '') && req.headers['if-none-match'] === '*' && dropped === 0;
      const up = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
        if (drop) {
          dropped++;
          ur.resume();
          ur.on('end', () => req.socket.destroy());
          return;
        }
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const port = (proxy.address() as { port: number }).port;
    // the SDK's own retries (libs/aws) resend the record write after the dropped response
    const client = createS3Client({ env: moto.env, clientConfig: { endpoint: `http://127.0.0.1:${port}` } });
    try {
      const store = new CacheStore(new S3CacheBackend({ bucket, prefix: 'lost', maxBytes: MAX, spoolDir: tmpdir(), client }), { maxBytes: MAX });
      const hash = newHash();
      const body = nxLikeBody(2000);
      const out = await put(store, hash, body);
      expect(dropped).toBe(1);
      expect(out.status).toBe('stored');
      const got = await store.get(['trusted'], hash);
      expect(got.status).toBe('hit');
      if (got.status === 'hit') expect(sha256Hex(await readAll(got.stream))).toBe(sha256Hex(body));
    } finally {
      client.destroy();
      await new Promise<void>((r) => proxy.close(() => r()));
    }
  });

  it('directory: a body whose client left before the upload started answers incomplete and leaves no blob', async () => {
    const store = new CacheStore(new FsCacheBackend(root), { maxBytes: MAX });
    const hash = newHash();
    const body = new PassThrough();
    body.write(Buffer.from([0x1f, 0x8b]));
    body.destroy(); // 'close' fires while put() is still checking whether the entry exists
    const out = await Promise.race([store.put('trusted', hash, body, 100_000), new Promise((r) => setTimeout(() => r('hung'), 3000))]);
    expect(out).toMatchObject({ status: 'incomplete' });
    await new Promise((r) => setTimeout(r, 100));
    const left = (() => {
      try {
        return readdirSync(join(root, 'v1', 'trusted', 'blobs')).filter((f) => f.startsWith(`${hash}.`));
      } catch {
        return [];
      }
    })();
    expect(left).toEqual([]);
  });

  it('directory: blobs are v1/<ns>/blobs/<hash>.<uuid>.tar.gz, and an entry stored under the earlier blobs/<hash>/<uuid>.tar.gz key is still served', async () => {
    const backend = new FsCacheBackend(root);
    const store = new CacheStore(backend, { maxBytes: MAX });
    const hash = newHash();
    const body = nxLikeBody(3 * 1024 * 1024); // streamed and verified while sent
    expect((await put(store, hash, body)).status).toBe('stored');
    const blob = await blobOf(store, hash);
    expect(blob).toMatch(new RegExp(`^v1/trusted/blobs/${hash}\\.[0-9a-f-]{36}\\.tar\\.gz$`));

    // rewrite the entry the way the earlier layout stored it: one directory per hash
    const oldKey = `v1/trusted/blobs/${hash}/${randomUUID()}.tar.gz`;
    mkdirSync(dirname(backend.pathOf(oldKey)), { recursive: true });
    renameSync(backend.pathOf(blob), backend.pathOf(oldKey));
    const recPath = backend.pathOf(recordKey('trusted', hash));
    const record = JSON.parse(readFileSync(recPath, 'utf8')) as EntryRecord;
    writeFileSync(recPath, JSON.stringify({ ...record, blob: oldKey }) + '\n');

    const got = await new CacheStore(backend, { maxBytes: MAX }).get(['trusted'], hash);
    expect(got.status).toBe('hit');
    if (got.status === 'hit') expect(sha256Hex(await readAll(got.stream))).toBe(sha256Hex(body));
  });
});
