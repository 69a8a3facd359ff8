import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { sha256Bytes } from '@buildonce/artifact';
import { runWithCrashPoint, startFaultProxy, startMoto, type FaultKind, type FaultProxy, type MotoServer, type ProxiedRequest } from '@buildonce/testing';
import { artifactKey, storedManifestKey } from './keys';
import { verifyArtifact, verifyObject } from './artifacts';
import { compositeSha256, digestFile, PART_SIZE } from './multipart';
import { openStore } from './open';
import { parseStoreUrl } from './url';
import type { ProjectName, Version } from '@buildonce/values';

/*
 * Large publishes through the streamed multipart upload: a publish killed (SIGKILL) at random points of
 * its parts resumes cleanly (no complete object before the manifest run, no incomplete upload left
 * afterwards), and a part whose checksum the server refuses is sent again alone.
 */
let moto: MotoServer;
let proxy: FaultProxy;
let s3: S3Client;
let dir: string;
const bucket = 'multipart';
const seen: { r: ProxiedRequest; fault: FaultKind | undefined }[] = [];
const child = join(__dirname, 'publish-crash-child.ts');

beforeAll(async () => {
  moto = await startMoto();
  await moto.createBucket(bucket);
  proxy = await startFaultProxy({ target: moto.endpoint, onRequest: (r, fault) => seen.push({ r, fault }) });
  s3 = new S3Client({ endpoint: moto.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  dir = mkdtempSync(join(tmpdir(), 'multipart-'));
});
afterAll(async () => {
  s3?.destroy();
  await proxy?.stop();
  await moto?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function incompleteUploads(key: string): Promise<string[]> {
  const out = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }));
  return (out.Uploads ?? []).filter((u) => u.Key === key).map((u) => u.UploadId!);
}

describe('streamed multipart publish', () => {
  it('a publish killed at random points of its parts leaves no complete object, then resumes and completes cleanly', async () => {
    // 3 full parts and a short one; kill points drawn at random (printed on failure), plus "every byte sent"
    const size = 3 * PART_SIZE + 3 * 1024 * 1024 + 17;
    const file = join(dir, 'bootstrap.zip');
    writeFileSync(file, randomBytes(size));
    const env = { ...process.env, ...moto.env, NODE_NO_WARNINGS: '1' };
    const points = [randomInt(1, size), randomInt(1, size), size].sort((a, b) => a - b);
    const key = `s/${artifactKey('big' as ProjectName, '4242' as Version, 'bootstrap.zip')}`;
    // one part at a time while killing, so which parts were complete at each kill is known: those before the one in flight
    for (const killAt of points) {
      const r = await runWithCrashPoint(child, [`s3://${bucket}/s`, file, '4242', String(killAt), '1'], undefined, { cwd: __dirname, env });
      expect(r.signal, `kill at byte ${killAt} of ${size}: ${r.stderr}`).toBe('SIGKILL');
      // nothing visible: no object, no manifest; at most one incomplete upload (the killed one, resumed by the next run)
      expect(
        await openStore(parseStoreUrl(`s3://${bucket}/s`), { env }).head(artifactKey('big' as ProjectName, '4242' as Version, 'bootstrap.zip')),
        `kill at ${killAt}`,
      ).toBeUndefined();
      expect(await openStore(parseStoreUrl(`s3://${bucket}/s`), { env }).head(storedManifestKey('big' as ProjectName, '4242' as Version))).toBeUndefined();
      expect((await incompleteUploads(key)).length, `kill at ${killAt}`).toBe(1);
    }
    // an unrelated incomplete upload of the same key (another client, no checksums) is aborted, not resumed
    await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    expect((await incompleteUploads(key)).length).toBe(2);

    // the final run goes through the proxy, which counts its requests
    seen.length = 0;
    const done = await runWithCrashPoint(child, [`s3://${bucket}/s`, file, '4242', '-1'], undefined, {
      cwd: __dirname,
      env: { ...env, AWS_ENDPOINT_URL: proxy.endpoint },
    });
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout.trim()).toBe('published');
    // the last kill came while part 4 was being sent: parts 1-3 are taken over, only part 4 is sent again
    expect(done.stderr).toMatch(/resuming interrupted upload of .*: 3 of 4 part\(s\) already stored/);
    expect(seen.filter((s) => s.r.method === 'PUT' && /[?&]partNumber=/.test(s.r.url)).map((s) => /partNumber=(\d+)/.exec(s.r.url)![1])).toEqual(['4']);
    expect(seen.filter((s) => s.r.method === 'POST' && /[?&]uploads/.test(s.r.url))).toEqual([]); // no new upload
    expect(done.stderr).toMatch(/aborted 1 stale incomplete upload/);
    expect(await incompleteUploads(key)).toEqual([]);
    const store = openStore(parseStoreUrl(`s3://${bucket}/s`), { env });
    const stored = await verifyArtifact(store, 'big' as ProjectName, '4242' as Version);
    const expected = stored.manifest.files[0]!;
    // verifyArtifact has no local copy: it re-reads the stored bytes (sha256 of the whole object), and their
    // composite in the stored parts comes from the same read (what S3 computed for the object)
    const bigKey = artifactKey('big' as ProjectName, '4242' as Version, 'bootstrap.zip');
    expect(await verifyObject(store, bigKey, expected)).toEqual({
      ok: true,
      method: 'rehash',
      composite: { ...(await store.head(bigKey))!.compositeSha256!, partSize: PART_SIZE },
    });
  });

  it('a part whose checksum the server refuses (400 BadDigest) is sent again alone; the rest once each', async () => {
    const size = 3 * PART_SIZE + 1234;
    const bytes = randomBytes(size);
    const file = join(dir, 'digest.bin');
    writeFileSync(file, bytes);
    const store = openStore(parseStoreUrl(`s3://${bucket}/d`), { env: { ...process.env, ...moto.env, AWS_ENDPOINT_URL: proxy.endpoint } });
    const isPart = (n: number) => (r: ProxiedRequest) => r.method === 'PUT' && new RegExp(`[?&]partNumber=${n}(&|$)`).test(r.url);
    const fired = [proxy.failNext('bad-digest', isPart(2)), proxy.failNext('bad-digest', isPart(4)), proxy.failNext('bad-digest', isPart(4))];
    seen.length = 0;
    const digests = await digestFile(file);
    const lines: string[] = [];
    const put = await store.putFileIfAbsent('digest/big.bin', file, { sha256Hex: sha256Bytes(bytes).hex, size, digests, log: (l) => lines.push(l) });
    await Promise.all(fired);
    expect(put).toBe('created');
    const parts = (n: number) => seen.filter((s) => isPart(n)(s.r)).length;
    expect([1, 2, 3, 4].map(parts)).toEqual([1, 2, 1, 3]);
    expect(seen.filter((s) => s.r.method === 'POST' && s.r.url.includes('uploads')).length).toBe(1); // one CreateMultipartUpload
    expect(seen.filter((s) => s.r.method === 'POST' && s.r.url.includes('uploadId=')).length).toBe(1); // one CompleteMultipartUpload
    expect(lines.filter((l) => /BadDigest/.test(l))).toHaveLength(3);
    // one composite-checksum comparison at the end, from the digests already computed (no download)
    const info = await store.head('digest/big.bin');
    expect(info?.compositeSha256).toEqual({ base64: compositeSha256(digests.parts), parts: 4 });
    expect(await verifyObject(store, 'digest/big.bin', { size, sha256: sha256Bytes(bytes).hex }, digests)).toEqual({
      ok: true,
      method: 'composite',
      composite: { base64: compositeSha256(digests.parts), parts: 4, partSize: PART_SIZE },
    });
  });

  it.each([11, 12, 13])('random faults on 3 in 10 requests (seed %i): one upload, stored bytes verified, no incomplete upload left', async (seed) => {
    const size = 4 * PART_SIZE + 99;
    const bytes = randomBytes(size);
    const file = join(dir, `faulty-${seed}.bin`);
    writeFileSync(file, bytes);
    const faulty = await startFaultProxy({ target: moto.endpoint, rate: 0.3, seed });
    try {
      const store = openStore(parseStoreUrl(`s3://${bucket}/f`), { env: { ...process.env, ...moto.env, AWS_ENDPOINT_URL: faulty.endpoint } });
      const key = `faulty/${seed}.bin`;
      const put = await store.putFileIfAbsent(key, file, { sha256Hex: sha256Bytes(bytes).hex, size });
      expect(['created', 'exists']).toContain(put);
      expect(faulty.stats.injected).toBeGreaterThan(0);
      expect(await incompleteUploads(`f/${key}`)).toEqual([]);
      const plain = openStore(parseStoreUrl(`s3://${bucket}/f`), { env: { ...process.env, ...moto.env } });
      expect(await verifyObject(plain, key, { size, sha256: sha256Bytes(bytes).hex })).toEqual({
        ok: true,
        method: 'rehash',
        composite: { ...(await plain.head(key))!.compositeSha256!, partSize: PART_SIZE },
      });
    } finally {
      await faulty.stop();
    }
  });

  it('part digests: one read gives the whole sha256 and the parts S3 combines into the composite checksum', async () => {
    for (const size of [1, PART_SIZE - 1, PART_SIZE, PART_SIZE + 1, 2 * PART_SIZE + randomInt(1, PART_SIZE)]) {
      const bytes = randomBytes(size);
      const file = join(dir, `d-${size}`);
      writeFileSync(file, bytes);
      const d = await digestFile(file);
      expect(d.sha256Hex).toBe(sha256Bytes(bytes).hex);
      expect(d.parts.length).toBe(Math.ceil(size / PART_SIZE));
      const expectedParts = Array.from({ length: d.parts.length }, (_, i) => sha256Bytes(bytes.subarray(i * PART_SIZE, (i + 1) * PART_SIZE)).hex);
      expect(d.parts.map((p) => p.toString('hex'))).toEqual(expectedParts);
    }
  });
});
