import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { captureLogger, type MotoBucket, type MotoServer, nxLikeBody, sha256Hex, startMotoBucket, newCacheHash } from '@buildonce/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCacheStore } from './config';
import { startServer, type RunningServer } from './start';
import { recordKey, type EntryRecord } from './storage/cache-store';
import { parseTokens } from './tokens';

const TOKEN = 'replica-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
const bucket = 'cache-replicas';
const prefix = 'org/cache';

/**
 * Several stateless server processes (here: servers in one process, each with its own S3 client) on ONE bucket,
 * clients picking replicas the way a round-robin load balancer spreads them. Everything they agree on goes
 * through S3's conditional writes (create-only records, compare-and-delete quarantine), never through memory.
 */
describe('replicas on one S3 bucket (moto_server)', () => {
  let moto: MotoServer;
  let s3: S3Client;
  const replicas: RunningServer[] = [];
  const logs = captureLogger();
  let mb: MotoBucket | undefined;
  const newHash = newCacheHash;

  beforeAll(async () => {
    mb = await startMotoBucket(bucket);
    ({ moto, s3 } = mb);
    for (let i = 0; i < 3; i++) {
      replicas.push(
        await startServer(
          {
            port: 0,
            host: '127.0.0.1',
            maxBytes: 64 * 1024 * 1024,
            store: parseCacheStore(`s3://${bucket}/${prefix}`, '/'),
            tokens: parseTokens(`${TOKEN}:read-write`),
            spoolDir: tmpdir(),
            shutdownTimeoutMs: 5000,
          },
          logs.logger.child({ replica: i }),
          { env: moto.env },
        ),
      );
    }
  });
  afterAll(async () => {
    for (const r of replicas) await r.close();
    await mb?.stop();
  });

  const url = (i: number, hash: string) => `${replicas[i % replicas.length]!.url}/v1/cache/${hash}`;
  const put = (i: number, hash: string, body: Buffer) => fetch(url(i, hash), { method: 'PUT', headers: auth, body });
  const get = async (i: number, hash: string) => {
    const r = await fetch(url(i, hash), { headers: auth });
    return { status: r.status, body: Buffer.from(await r.arrayBuffer()) };
  };
  const keys = async (under: string) => {
    const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/${under}` }));
    return (out.Contents ?? []).map((o) => o.Key!.slice(prefix.length + 1));
  };
  const lookups = (hash: string) => logs.records().filter((r) => r.msg === 'cache request' && r.method === 'GET' && r.hash === hash);

  it.each([
    ['small', 2_000, 6],
    ['multipart-sized', 6 * 1024 * 1024, 3],
  ])('concurrent PUTs of one hash (%s) across replicas: exactly one 200, the rest 409, every replica serves that upload whole', async (_n, size, uploads) => {
    const hash = newHash();
    const bodies = Array.from({ length: uploads }, (_, i) => nxLikeBody(size, `upload-${i}`));
    const statuses = await Promise.all(bodies.map((b, i) => put(i, hash, b).then((r) => r.status)));
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(uploads - 1);
    const winner = bodies[statuses.indexOf(200)]!;
    for (let i = 0; i < 3; i++) {
      const g = await get(i, hash);
      expect(g.status).toBe(200);
      expect(sha256Hex(g.body)).toBe(sha256Hex(winner));
    }
    // the losers deleted their blobs: one blob left for the hash, the one the record names
    const blobs = (await keys('v1/trusted/blobs/')).filter((k) => k.startsWith(`v1/trusted/blobs/${hash}.`));
    const rec = JSON.parse(
      Buffer.from(
        await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}/${recordKey('trusted', hash)}` }))).Body!.transformToByteArray(),
      ).toString(),
    ) as EntryRecord;
    expect(blobs).toEqual([rec.blob]);
  });

  it('a PUT interrupted on one replica leaves nothing another replica serves, and the hash can be stored through another', async () => {
    const hash = newHash();
    const body = nxLikeBody(8 * 1024 * 1024); // past one 5 MiB part: a multipart upload is under way when the client goes
    const { hostname, port, pathname } = new URL(url(0, hash));
    await new Promise<void>((resolve) => {
      const req = request({ host: hostname, port, path: pathname, method: 'PUT', headers: { ...auth, 'content-length': body.length }, agent: false });
      req.on('error', () => resolve());
      req.on('close', () => resolve());
      req.write(body.subarray(0, 6 * 1024 * 1024), () => setTimeout(() => req.destroy(), 200));
    });
    for (let i = 0; i < 50 && !logs.records().some((r) => r.method === 'PUT' && r.hash === hash); i++) await new Promise((r) => setTimeout(r, 100));
    expect(logs.records().find((r) => r.method === 'PUT' && r.hash === hash)).toMatchObject({ outcome: 'incomplete', aborted: true });
    for (const i of [1, 2, 0]) expect((await get(i, hash)).status).toBe(404);
    expect((await keys('v1/trusted/')).filter((k) => k.includes(`/${hash}.`))).toEqual([]);
    expect((await put(1, hash, body)).status).toBe(200);
    const g = await get(2, hash);
    expect(g.status).toBe(200);
    expect(sha256Hex(g.body)).toBe(sha256Hex(body));
  });

  it('a blob replaced under its key is quarantined by the first replica that reads it, and every replica then sees the miss and the repair', async () => {
    const hash = newHash();
    const body = nxLikeBody(50_000);
    expect((await put(0, hash, body)).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await get(i, hash)).status).toBe(200);
    const rec = JSON.parse(
      Buffer.from(
        await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}/${recordKey('trusted', hash)}` }))).Body!.transformToByteArray(),
      ).toString(),
    ) as EntryRecord;
    // same size, other bytes, same key: what a tampering writer with bucket access would do
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/${rec.blob}`, Body: nxLikeBody(50_000 - 1000) }));

    expect((await get(1, hash)).status).toBe(404);
    expect(lookups(hash).at(-1)).toMatchObject({ status: 404, outcome: 'corrupt' });
    expect((await keys(`v1/trusted/quarantine/${hash}.`)).length).toBe(1);
    for (const i of [0, 2]) {
      expect((await get(i, hash)).status).toBe(404);
      // not judged again: the record is gone for every replica
      expect(lookups(hash).at(-1)).toMatchObject({ status: 404, outcome: 'miss' });
    }
    expect((await keys(`v1/trusted/quarantine/${hash}.`)).length).toBe(1);

    expect((await put(2, hash, body)).status).toBe(200);
    for (let i = 0; i < 3; i++) {
      const g = await get(i, hash);
      expect(g.status).toBe(200);
      expect(sha256Hex(g.body)).toBe(sha256Hex(body));
    }
  });

  it('a mixed workload spread over the replicas: every GET after a 200 PUT is a hit with the stored bytes, no errors', async () => {
    const hashes = Array.from({ length: 12 }, () => newHash());
    const bodies = new Map(hashes.map((h) => [h, nxLikeBody(10_000 + Math.floor(Math.random() * 40_000), h)]));
    let k = 0;
    const ops = hashes.flatMap((h) => [() => put(k++, h, bodies.get(h)!).then((r) => r.status), () => put(k++, h, bodies.get(h)!).then((r) => r.status)]);
    const puts = await Promise.all(ops.map((op) => op()));
    expect(puts.filter((s) => s === 200)).toHaveLength(hashes.length);
    expect(puts.filter((s) => s !== 200 && s !== 409)).toEqual([]);
    const gets = await Promise.all(hashes.flatMap((h) => [0, 1, 2].map((i) => get(i + k, h).then((g) => ({ h, g })))));
    for (const { h, g } of gets) {
      expect(g.status).toBe(200);
      expect(sha256Hex(g.body)).toBe(sha256Hex(bodies.get(h)!));
    }
  });
});
