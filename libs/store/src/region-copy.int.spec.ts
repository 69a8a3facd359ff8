import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifest, sha256Bytes, type Manifest, type StoredManifest } from '@buildonce/artifact';
import { removeTempDirs, startFaultProxy, startMoto, tempDir, type FaultProxy, type MotoServer, type ProxiedRequest } from '@buildonce/testing';
import type { ProjectName, Version } from '@buildonce/values';
import { artifactKey, storedManifestKey } from './keys';
import { publishArtifact, publishMetadataFromEnv, verifyArtifact, verifyArtifactFiles, type VerifiedComposite } from './artifacts';
import { RegionReplicaMismatchError, RegionStoreError } from './errors';
import { checkStoreRegion, ensureRegionCopy, openRegionStore, type RegionCopyRequest } from './region-copy';
import { S3BlobStore } from './s3-blob';
import { parseStoreUrl } from './url';

/*
 * Region copies on moto_server, which serves every region from one endpoint: a home bucket in us-east-1
 * and a replica bucket in eu-west-1 (CreateBucketConfiguration). Requests go through a proxy that records them.
 */
let moto: MotoServer;
let proxy: FaultProxy;
const seen: ProxiedRequest[] = [];
let env: NodeJS.ProcessEnv;
const project = 'rust-scorer' as ProjectName;

beforeAll(async () => {
  moto = await startMoto();
  proxy = await startFaultProxy({ target: moto.endpoint, onRequest: (r) => seen.push(r) });
  env = { ...moto.env, AWS_ENDPOINT_URL: proxy.endpoint };
  await moto.createBucket('home-use1');
  await moto.createBucket('replica-euw1', 'eu-west-1');
});
afterAll(async () => {
  await proxy?.stop();
  await moto?.stop();
  removeTempDirs();
});

/** Publishes one version with a `bootstrap.zip` of `size` random bytes to a fresh home prefix. */
async function published(
  version: string,
  size: number,
): Promise<{ home: S3BlobStore; replica: S3BlobStore; stored: StoredManifest; composites: Readonly<Record<string, VerifiedComposite>>; bytes: Buffer }> {
  const tag = randomBytes(3).toString('hex');
  const home = new S3BlobStore(parseStoreUrl(`s3://home-use1/${tag}`) as Extract<ReturnType<typeof parseStoreUrl>, { kind: 's3' }>, { env });
  const replica = openRegionStore(`s3://replica-euw1/${tag}`, 'eu-west-1', { env });
  const dir = tempDir('region-art-');
  const bytes = randomBytes(size);
  writeFileSync(join(dir, 'bootstrap.zip'), bytes);
  const manifest: Manifest = parseManifest({
    schemaVersion: 1,
    project,
    version,
    kind: 'lambda-zip',
    files: [{ name: 'bootstrap.zip', size, sha256: sha256Bytes(bytes).hex }],
    runtime: 'provided.al2023',
    architecture: 'arm64',
    handler: 'bootstrap',
    toolchain: 'test',
  });
  await publishArtifact({ store: home, manifest, dir, metadata: publishMetadataFromEnv({}) });
  const { stored, composites } = await verifyArtifactFiles(home, project, version as Version);
  return { home, replica, stored, composites, bytes };
}

function request(p: Awaited<ReturnType<typeof published>>, version: string, extra: Partial<RegionCopyRequest> = {}): RegionCopyRequest {
  return {
    home: p.home,
    replica: p.replica,
    region: 'eu-west-1',
    project,
    version: version as Version,
    namespace: 'trusted',
    stored: p.stored,
    composites: p.composites,
    log: () => {},
    ...extra,
  };
}

const on = (bucket: string, key: string) => seen.filter((r) => r.url.split('?')[0] === `/${bucket}/${key}`);

describe('region copies', () => {
  it('checks that a region store is in its region (GetBucketLocation)', async () => {
    await expect(checkStoreRegion(openRegionStore('s3://replica-euw1/x', 'eu-west-1', { env }), 'eu-west-1')).resolves.toBeUndefined();
    await expect(checkStoreRegion(openRegionStore('s3://home-use1/x', 'eu-west-1', { env }), 'eu-west-1')).rejects.toThrow(
      /^the store of region eu-west-1 \(s3:\/\/home-use1\) is a bucket in us-east-1: .*regions\.eu-west-1\.store/,
    );
    await expect(checkStoreRegion(openRegionStore('s3://home-use1/x', 'eu-west-1', { env }), 'eu-west-1')).rejects.toThrow(RegionStoreError);
  });

  it('copies a missing replica server-side (file, then manifest last) and verifies it; a dry run only lists the copies', async () => {
    const p = await published('101', 300_000);
    const lines: string[] = [];
    const dry = await ensureRegionCopy(request(p, '101', { dryRun: true, log: (l) => lines.push(l) }));
    expect(dry.status).toBe('would-copy');
    expect(lines).toEqual([
      expect.stringMatching(
        /^dry run: would copy s3:\/\/home-use1\/.*\/bootstrap\.zip to s3:\/\/replica-euw1\/.*\/bootstrap\.zip \(eu-west-1, CopyObject, 300000 bytes\)$/,
      ),
      expect.stringMatching(/would copy .*manifest\.json/),
    ]);
    expect(await p.replica.head(artifactKey(project, '101' as Version, 'bootstrap.zip'))).toBeUndefined();

    seen.length = 0;
    const r = await ensureRegionCopy(request(p, '101'));
    expect(r.status).toBe('copied');
    expect(r.objects.map((o) => [o.file, o.status, o.method])).toEqual([
      ['bootstrap.zip', 'copied', 'CopyObject'],
      ['manifest.json', 'copied', 'CopyObject'],
    ]);
    const key = p.replica.s3Object(artifactKey(project, '101' as Version, 'bootstrap.zip')).key;
    const copy = on('replica-euw1', key).find((q) => q.method === 'PUT')!;
    expect(copy.headers['x-amz-copy-source']).toMatch(/^\/?home-use1\//);
    expect(copy.headers['if-none-match']).toBe('*');
    expect(copy.headers['x-amz-checksum-algorithm']).toBe('SHA256');
    expect(copy.headers['x-amz-copy-source-if-match']).toBeTruthy();
    // the replica is a complete, verifiable version on its own
    expect((await verifyArtifact(p.replica, project, '101' as Version)).manifest.files).toEqual(p.stored.manifest.files);
  });

  it('a replica already present and correct is not copied: one HEAD of the file', async () => {
    const p = await published('102', 200_000);
    await ensureRegionCopy(request(p, '102'));
    seen.length = 0;
    const r = await ensureRegionCopy(request(p, '102'));
    expect(r.status).toBe('present');
    const key = p.replica.s3Object(artifactKey(project, '102' as Version, 'bootstrap.zip')).key;
    expect(on('replica-euw1', key).map((q) => q.method)).toEqual(['HEAD']);
    expect(seen.filter((q) => q.method !== 'HEAD' && q.method !== 'GET')).toEqual([]);
  });

  it('a tampered replica is refused and never overwritten', async () => {
    const p = await published('103', 100_000);
    const key = artifactKey(project, '103' as Version, 'bootstrap.zip');
    const other = randomBytes(100_000);
    const file = join(tempDir('tampered-'), 'x');
    writeFileSync(file, other);
    await p.replica.putFileIfAbsent(key, file, { sha256Hex: sha256Bytes(other).hex, size: other.length });
    const err = await ensureRegionCopy(request(p, '103')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegionReplicaMismatchError);
    expect((err as Error).message).toMatch(
      new RegExp(
        `^s3://replica-euw1/.*/bootstrap\\.zip \\(eu-west-1\\) has sha256 ${sha256Bytes(other).hex}, but rust-scorer@103's manifest says 100000 bytes, sha256 ${p.stored.manifest.files[0]!.sha256}: a replica is never overwritten`,
      ),
    );
    // still the foreign bytes, and no manifest next to them
    expect((await p.replica.head(key))!.sha256Base64).toBe(sha256Bytes(other).base64);
    expect(await p.replica.head(storedManifestKey(project, '103' as Version))).toBeUndefined();
  });

  it('a conditional CopyObject answered with 501 (buckets enforcing conditional writes) copies in one UploadPartCopy part, completed create-only', async () => {
    const p = await published('105', 150_000);
    const key = p.replica.s3Object(artifactKey(project, '105' as Version, 'bootstrap.zip')).key;
    const fired = proxy.failNext('501', (q) => q.method === 'PUT' && q.url.split('?')[0] === `/replica-euw1/${key}` && !!q.headers['x-amz-copy-source']);
    seen.length = 0;
    const r = await ensureRegionCopy(request(p, '105'));
    await fired;
    expect(r.objects[0]).toMatchObject({ status: 'copied', method: 'UploadPartCopy' });
    const parts = on('replica-euw1', key).filter((q) => q.method === 'PUT' && /partNumber=/.test(q.url));
    expect(parts.map((q) => q.headers['x-amz-copy-source-range'])).toEqual(['bytes=0-149999']);
    expect(on('replica-euw1', key).find((q) => q.method === 'POST' && /uploadId=/.test(q.url))!.headers['if-none-match']).toBe('*');
    expect((await verifyArtifact(p.replica, project, '105' as Version)).manifest.files).toEqual(p.stored.manifest.files);
  });

  it('a multipart home object that is not the verified bytes is never accepted in a region (composite checksums are not trusted)', async () => {
    // the verified manifest says bytes A; the home object now holds bytes B of the same size, uploaded in parts
    // (composite checksum only): a region copy of B must be refused, whatever the home object's checksum says
    const size = 2 * 8 * 1024 * 1024 + 77;
    const verified = await published('106', size);
    const swapped = await published('106', size);
    const err = await ensureRegionCopy(
      request(swapped, '106', { stored: verified.stored, composites: verified.composites, multipartThreshold: 5 * 1024 * 1024 }),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegionReplicaMismatchError);
    expect((err as Error).message).toContain(`has sha256 ${sha256Bytes(swapped.bytes).hex}`);
    expect(await swapped.replica.head(storedManifestKey(project, '106' as Version))).toBeUndefined();
  });

  it('copies a large artifact with UploadPartCopy in parts and verifies it', async () => {
    // published as a multipart object (8 MiB parts); copied above a 5 MiB threshold
    const p = await published('104', 2 * 8 * 1024 * 1024 + 12345);
    seen.length = 0;
    const lines: string[] = [];
    const r = await ensureRegionCopy(request(p, '104', { multipartThreshold: 5 * 1024 * 1024, log: (l) => lines.push(l) }));
    expect(r.objects[0]).toMatchObject({ file: 'bootstrap.zip', status: 'copied', method: 'UploadPartCopy' });
    const key = p.replica.s3Object(artifactKey(project, '104' as Version, 'bootstrap.zip')).key;
    const parts = on('replica-euw1', key).filter((q) => q.method === 'PUT' && /partNumber=/.test(q.url));
    expect(parts.map((q) => q.headers['x-amz-copy-source-range'])).toEqual(
      expect.arrayContaining(['bytes=0-8388607', 'bytes=8388608-16777215', `bytes=16777216-${2 * 8 * 1024 * 1024 + 12345 - 1}`]),
    );
    expect(parts).toHaveLength(3);
    const complete = on('replica-euw1', key).find((q) => q.method === 'POST' && /uploadId=/.test(q.url))!;
    expect(complete.headers['if-none-match']).toBe('*');
    expect(lines[0]).toMatch(/copied .*bootstrap\.zip \(eu-west-1, UploadPartCopy, 16789561 bytes, \d+ ms\): sha256 verified/);
    // the replica's composite checksum equals the one of the bytes verified at home: no byte is read back
    expect(p.composites['bootstrap.zip']).toMatchObject({ parts: 3, partSize: 8 * 1024 * 1024 });
    expect(on('replica-euw1', key).filter((q) => q.method === 'GET')).toEqual([]);
    expect((await verifyArtifact(p.replica, project, '104' as Version)).manifest.files).toEqual(p.stored.manifest.files);

    // present on the next promotion: one HEAD, verified against the composite of the verified bytes
    seen.length = 0;
    const again = await ensureRegionCopy(request(p, '104', { multipartThreshold: 5 * 1024 * 1024 }));
    expect(again.status).toBe('present');
    expect(on('replica-euw1', key).map((q) => q.method)).toEqual(['HEAD']);
  });

  it('a multipart replica whose composite is not the verified one is read back through sha256 (accepted only when its bytes match)', async () => {
    const p = await published('107', 2 * 8 * 1024 * 1024 + 5);
    const key = p.replica.s3Object(artifactKey(project, '107' as Version, 'bootstrap.zip')).key;
    await ensureRegionCopy(request(p, '107', { multipartThreshold: 5 * 1024 * 1024 }));
    // a verified composite that cannot compare (as for bytes verified in other parts)
    const other = { ...p.composites['bootstrap.zip']!, base64: sha256Bytes(Buffer.from('other parts')).base64 };
    seen.length = 0;
    const r = await ensureRegionCopy(request(p, '107', { composites: { 'bootstrap.zip': other } }));
    expect(r.status).toBe('present');
    expect(on('replica-euw1', key).map((q) => q.method)).toEqual(['HEAD', 'GET']);
  });
});
