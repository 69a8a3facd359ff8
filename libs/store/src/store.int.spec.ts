import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { awsClients } from '@buildonce/aws';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256Bytes } from '@buildonce/artifact';
import { removeTempDirs, tempDir, writeTestArtifactDir } from '@buildonce/testing';
import { useMotoBucket } from '@buildonce/testing/src/moto-hooks';
import {
  ArtifactConflictError,
  ArtifactIntegrityError,
  StoreAccessError,
  artifactKey,
  openStore,
  parseStoreUrl,
  publishArtifact,
  publishMetadataFromEnv,
  verifyArtifact,
  type BlobStore,
} from './index';
import type { ProjectName, Version } from '@buildonce/values';

afterAll(removeTempDirs);

const bucket = 'buildonce-test';
const s3Bucket = useMotoBucket(bucket);

const artifactDir = writeTestArtifactDir;

const backends: [string, () => BlobStore][] = [
  ['file', () => openStore(parseStoreUrl(`file://${tempDir('store-')}`))],
  ['s3', () => openStore(parseStoreUrl(`s3://${bucket}/p${randomBytes(4).toString('hex')}`))],
];

describe.each(backends)('%s backend', (_name, make) => {
  const meta = publishMetadataFromEnv({});

  it('publishes once, then re-publish is already-published and uploads nothing', async () => {
    const store = make();
    const { dir, manifest } = artifactDir('p1', '111', { 'bootstrap.zip': randomBytes(2048) });
    const first = await publishArtifact({ store, manifest, dir, metadata: meta });
    expect(first.status).toBe('published');
    expect(first.uploaded.map((f) => f.name)).toEqual(['bootstrap.zip']);
    const second = await publishArtifact({ store, manifest, dir, metadata: meta });
    expect(second).toMatchObject({ status: 'already-published', uploaded: [] });
    const stored = await verifyArtifact(store, 'p1' as ProjectName, '111' as Version);
    expect(stored.manifest.files[0]!.sha256).toBe(manifest.files[0]!.sha256);
  });

  it('a re-publish of a version whose manifest exists but whose file is gone uploads it again (repaired); other bytes are refused naming the repair', async () => {
    const store = make();
    const { dir, manifest } = artifactDir('p9', '919', { 'bootstrap.zip': randomBytes(3000), 'extra.bin': randomBytes(700) });
    expect((await publishArtifact({ store, manifest, dir, metadata: meta })).status).toBe('published');
    await store.delete(artifactKey('p9' as ProjectName, '919' as Version, 'extra.bin'));
    await expect(verifyArtifact(store, 'p9' as ProjectName, '919' as Version)).rejects.toThrow(/extra\.bin is missing/);
    expect(await publishArtifact({ store, manifest, dir, metadata: meta, dryRun: true })).toMatchObject({
      status: 'dry-run',
      uploaded: [{ name: 'extra.bin', size: 700 }],
      reused: ['bootstrap.zip'],
    });
    const lines: string[] = [];
    expect(await publishArtifact({ store, manifest, dir, metadata: meta, log: (l) => lines.push(l) })).toMatchObject({
      status: 'repaired',
      uploaded: [{ name: 'extra.bin', size: 700 }],
      reused: ['bootstrap.zip'],
    });
    expect(lines.join('\n')).toMatch(/1 file\(s\) are missing \(extra\.bin\): uploading them again/);
    await verifyArtifact(store, 'p9' as ProjectName, '919' as Version);
    expect((await publishArtifact({ store, manifest, dir, metadata: meta })).status).toBe('already-published');
    // no lease object stays behind
    const keys: string[] = [];
    for await (const o of store.list('artifacts/p9/919/')) keys.push(o.key.split('/').pop()!);
    expect(keys.sort()).toEqual(['bootstrap.zip', 'extra.bin', 'manifest.json']);
    // a stored file with other bytes (same size) cannot be overwritten: refused, naming the object to delete
    await store.delete(artifactKey('p9' as ProjectName, '919' as Version, 'extra.bin'));
    await store.putBytesIfAbsent(artifactKey('p9' as ProjectName, '919' as Version, 'extra.bin'), randomBytes(700));
    const e = await publishArtifact({ store, manifest, dir, metadata: meta }).then(
      () => undefined,
      (x: Error) => x,
    );
    expect(e).toBeInstanceOf(ArtifactIntegrityError);
    expect(e!.message).toMatch(
      /version 919 of p9 is published but .*extra\.bin has sha256 [0-9a-f]{64}, manifest says [0-9a-f]{64}: stored objects are never overwritten; delete .*extra\.bin and publish again to restore it$/,
    );
    expect(e!.message).not.toContain('\n');
  });

  it('refuses a conflicting publish of the same version and leaves the stored bytes unchanged', async () => {
    const store = make();
    const original = randomBytes(1000);
    const a = artifactDir('p2', '222', { 'bootstrap.zip': original });
    await publishArtifact({ store, manifest: a.manifest, dir: a.dir, metadata: meta });
    const b = artifactDir('p2', '222', { 'bootstrap.zip': randomBytes(1000) });
    await expect(publishArtifact({ store, manifest: b.manifest, dir: b.dir, metadata: meta })).rejects.toThrow(ArtifactConflictError);
    const got = await store.getBytes(artifactKey('p2' as ProjectName, '222' as Version, 'bootstrap.zip'));
    expect(got!.bytes.equals(original)).toBe(true);
  });

  it('detects a conflict on a half-published version (file present, manifest missing)', async () => {
    const store = make();
    const a = artifactDir('p3', '333', { 'bootstrap.zip': randomBytes(500) });
    await store.putFileIfAbsent(artifactKey('p3' as ProjectName, '333' as Version, 'bootstrap.zip'), join(a.dir, 'bootstrap.zip'), {
      sha256Hex: a.manifest.files[0]!.sha256,
      size: 500,
    });
    const b = artifactDir('p3', '333', { 'bootstrap.zip': randomBytes(500) });
    await expect(publishArtifact({ store, manifest: b.manifest, dir: b.dir, metadata: meta })).rejects.toThrow(ArtifactConflictError);
    expect(await store.head(artifactKey('p3' as ProjectName, '333' as Version, 'manifest.json'))).toBeUndefined();
  });

  it('10 concurrent publishers of one version: one stored copy, ten successes', async () => {
    const store = make();
    const { dir, manifest } = artifactDir('p4', '444', { 'bootstrap.zip': randomBytes(64 * 1024) });
    const results = await Promise.all(Array.from({ length: 10 }, () => publishArtifact({ store, manifest, dir, metadata: meta })));
    expect(results.filter((r) => r.status === 'published')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'already-published')).toHaveLength(9);
    const keys: string[] = [];
    for await (const o of store.list('artifacts/p4/')) keys.push(o.key);
    expect(keys.sort()).toEqual(['artifacts/p4/444/bootstrap.zip', 'artifacts/p4/444/manifest.json']);
  });

  it('publishes a multipart-sized file (> 8 MiB) and verifies it by rehashing', async () => {
    const store = make();
    const { dir, manifest } = artifactDir('p5', '555', { 'big.tar.gz': randomBytes(9 * 1024 * 1024 + 17) });
    let progressCalls = 0;
    const r = await publishArtifact({ store, manifest, dir, metadata: meta, onProgress: () => progressCalls++ });
    expect(r.status).toBe('published');
    expect(progressCalls).toBeGreaterThan(0);
    await expect(verifyArtifact(store, 'p5' as ProjectName, '555' as Version)).resolves.toBeTruthy();
    // a second multipart write of the same key never overwrites (If-None-Match on CompleteMultipartUpload)
    const other = artifactDir('p5', '555', { 'big.tar.gz': randomBytes(9 * 1024 * 1024 + 17) });
    const put = await store.putFileIfAbsent(artifactKey('p5' as ProjectName, '555' as Version, 'big.tar.gz'), join(other.dir, 'big.tar.gz'), {
      sha256Hex: other.manifest.files[0]!.sha256,
      size: other.manifest.files[0]!.size,
    });
    expect(put).toBe('exists');
    await expect(verifyArtifact(store, 'p5' as ProjectName, '555' as Version)).resolves.toBeTruthy();
  });

  it('dry run reports what it would upload and writes nothing', async () => {
    const store = make();
    const { dir, manifest } = artifactDir('p6', '666', { 'bootstrap.zip': randomBytes(10) });
    const r = await publishArtifact({ store, manifest, dir, metadata: meta, dryRun: true });
    expect(r).toMatchObject({ status: 'dry-run', uploaded: [{ name: 'bootstrap.zip', size: 10 }] });
    expect(await store.head(artifactKey('p6' as ProjectName, '666' as Version, 'bootstrap.zip'))).toBeUndefined();
  });

  it('fails verification when a stored file was tampered with', async () => {
    const store = make();
    const { dir, manifest } = artifactDir('p7', '777', { 'bootstrap.zip': randomBytes(100) });
    await publishArtifact({ store, manifest, dir, metadata: meta });
    await store.delete(artifactKey('p7' as ProjectName, '777' as Version, 'bootstrap.zip'));
    const evil = join(dir, 'evil');
    writeFileSync(evil, randomBytes(100));
    await store.putFileIfAbsent(artifactKey('p7' as ProjectName, '777' as Version, 'bootstrap.zip'), evil, {
      sha256Hex: sha256Bytes(readFileSync(evil)).hex,
      size: 100,
    });
    await expect(verifyArtifact(store, 'p7' as ProjectName, '777' as Version)).rejects.toThrow(ArtifactIntegrityError);
  });

  it('refuses a missing local build output with a one-line error', async () => {
    const store = make();
    const { manifest } = artifactDir('p8', '888', { 'bootstrap.zip': randomBytes(10) });
    const err = await publishArtifact({ store, manifest, dir: '/nonexistent', metadata: meta }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(ArtifactIntegrityError);
    expect((err as Error).message).toMatch(/missing: run nx run p8:build first/);
    expect((err as Error).message).not.toContain('\n');
  });

  it('compare-and-swap: only the holder of the current etag wins', async () => {
    const store = make();
    const key = 'releases/p/dev/current.json';
    const created = await store.putBytesIfMatch(key, Buffer.from('{"v":1}'), null);
    expect(created.status).toBe('written');
    expect((await store.putBytesIfMatch(key, Buffer.from('{"v":2}'), null)).status).toBe('precondition-failed');
    const cur = await store.getBytes(key);
    const results = await Promise.all([1, 2, 3, 4, 5].map((i) => store.putBytesIfMatch(key, Buffer.from(`{"v":${10 + i}}`), cur!.etag)));
    expect(results.filter((r) => r.status === 'written')).toHaveLength(1);
  });
});

describe('S3 access errors', () => {
  it('names a missing bucket', async () => {
    const store = openStore(parseStoreUrl('s3://no-such-bucket-here/x'));
    const { dir, manifest } = artifactDir('p9', '999', { 'bootstrap.zip': randomBytes(10) });
    const err = await publishArtifact({ store, manifest, dir, metadata: publishMetadataFromEnv({}) }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(StoreAccessError);
    expect((err as Error).message).toMatch(/bucket "no-such-bucket-here" does not exist/);
  });

  it('names missing credentials', async () => {
    const env = {
      AWS_ENDPOINT_URL: s3Bucket().moto.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: '/nonexistent',
      AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
    };
    const saved = { ...process.env };
    for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_PROFILE', 'AWS_SESSION_TOKEN']) delete process.env[k];
    Object.assign(process.env, env);
    try {
      const store = openStore(parseStoreUrl(`s3://${bucket}/x`), { env });
      const err = await store.head('artifacts/x/1/manifest.json').catch((e: Error) => e);
      expect(err).toBeInstanceOf(StoreAccessError);
      expect((err as Error).message).toMatch(/no AWS credentials/);
    } finally {
      process.env = saved;
    }
  });

  it('stores S3 objects with a SHA256 checksum equal to the manifest sha256', async () => {
    const store = openStore(parseStoreUrl(`s3://${bucket}/chk`));
    const { dir, manifest } = artifactDir('pc', '1', { 'bootstrap.zip': randomBytes(300) });
    await publishArtifact({ store, manifest, dir, metadata: publishMetadataFromEnv({}) });
    const head = await store.head(artifactKey('pc' as ProjectName, '1' as Version, 'bootstrap.zip'));
    expect(Buffer.from(head!.sha256Base64!, 'base64').toString('hex')).toBe(manifest.files[0]!.sha256);
    const got = await awsClients()
      .s3()
      .send(new GetObjectCommand({ Bucket: bucket, Key: 'chk/artifacts/pc/1/manifest.json' }));
    expect(JSON.parse(await got.Body!.transformToString()).manifest.version).toBe('1');
  });
});
