import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import {
  currentKey,
  historyKey,
  openStore,
  parseStoreUrl,
  provenanceKey,
  publishMetadataFromEnv,
  readStoredManifest,
  verifyArtifact,
  type BlobStore,
} from '@buildonce/store';
import { publishTestZip, removeTempDirs, tempDir } from '@buildonce/testing';
import { useMotoBucket } from '@buildonce/testing/src/moto-hooks';
import { runRetention } from './retention';
import { appendEntry } from '@buildonce/ledger';
import { draft } from '@buildonce/testing';
import type { ProjectName, Version, EnvironmentName } from '@buildonce/values';

afterAll(removeTempDirs);

const bucket = 'retention-it';
const s3Bucket = useMotoBucket(bucket);

async function publish(store: BlobStore, project: string, version: string, opts: { preview?: boolean; pr?: string; size?: number; provenance?: Buffer } = {}) {
  const metadata = publishMetadataFromEnv(opts.pr ? { GITHUB_REF: `refs/pull/${opts.pr}/merge` } : {});
  await publishTestZip({ store, project, version, size: opts.size, metadata, namespace: opts.preview ? 'preview' : 'trusted', provenance: opts.provenance });
}

/** A ledger as promotion leaves it: history entries with zero-padded seq and a current pointer. */
async function ledger(store: BlobStore, project: string, env: string, versions: string[]) {
  for (const v of versions) await appendEntry(store, draft(v as Version, { project: project as ProjectName, environment: env as EnvironmentName }));
}

const backends: [string, () => BlobStore][] = [
  ['file', () => openStore(parseStoreUrl(`file://${tempDir('ret-store-')}`))],
  ['s3', () => openStore(parseStoreUrl(`s3://${bucket}/r${randomBytes(4).toString('hex')}`))],
];

describe.each(backends)('retention on the %s backend', (_n, make) => {
  it('deletes exactly the old versions, never current / rollback window / newest / in-flight, and dry run deletes nothing', async () => {
    const store = make();
    const versions = ['1', '2', '3', '4', '5', '6', '7', '8'];
    for (const v of versions) await publish(store, 'svc', v);
    // prod: current 6, history 2 -> 5 -> 6 ; staging history 1..? keeps 1 only through its window
    await ledger(store, 'svc', 'prod', ['2', '5', '6']);
    await ledger(store, 'svc', 'staging', ['1', '1', '1', '1', '1', '1', '3']);
    await sleep(1200);

    const opts = { store, olderThanDays: 0, keep: 2, inFlightMs: 1000 };
    const dry = await runRetention({ ...opts, dryRun: true });
    expect(dry.deleted.map((v) => v.version).sort()).toEqual(['4']);
    for (const v of versions) expect(await readStoredManifest(store, 'svc' as ProjectName, v as Version)).toBeDefined();

    const reasons = Object.fromEntries(dry.kept.map((k) => [k.version, k.reason]));
    expect(reasons).toMatchObject({
      '6': 'current',
      '3': 'current',
      '2': 'rollback-window',
      '5': 'rollback-window',
      '1': 'rollback-window',
      '7': 'newest',
      '8': 'newest',
    });

    // a concurrent publish during the real run is not harmed
    const [real] = await Promise.all([runRetention(opts), publish(store, 'svc', '9')]);
    expect(real.deleted.map((v) => v.version)).toEqual(['4']);
    expect(real.bytesFreed).toBe(dry.bytesFreed);
    expect(real.bytesFreed).toBeGreaterThan(1000);
    expect(await readStoredManifest(store, 'svc' as ProjectName, '4' as Version)).toBeUndefined();
    const left: string[] = [];
    for await (const o of store.list('artifacts/svc/4/')) left.push(o.key);
    expect(left).toEqual([]);
    for (const v of ['1', '2', '3', '5', '6', '7', '8', '9']) await expect(verifyArtifact(store, 'svc' as ProjectName, v as Version)).resolves.toBeTruthy();
  });

  it("deletes a version's provenance with it, manifest first", async () => {
    const store = make();
    await publish(store, 'svc', '1', { provenance: Buffer.from('{"payloadType":"application/vnd.in-toto+json","payload":"","signatures":[]}\n') });
    await publish(store, 'svc', '2', { provenance: Buffer.from('{}') });
    expect(await store.head(provenanceKey('svc' as ProjectName, '1' as Version))).toBeDefined();
    await sleep(1200);
    const deletes: string[] = [];
    const watched = new Proxy(store, {
      get(t, prop, r) {
        const v = Reflect.get(t, prop, r);
        if (prop === 'delete') return (key: string) => (deletes.push(key), (v as BlobStore['delete']).call(t, key));
        return typeof v === 'function' ? v.bind(t) : v;
      },
    });
    const r = await runRetention({ store: watched, olderThanDays: 0, keep: 1, inFlightMs: 1000 });
    expect(r.deleted.map((v) => v.version)).toEqual(['1']);
    expect(deletes[0]).toBe('artifacts/svc/1/manifest.json');
    expect(deletes.slice(1).sort()).toEqual(['artifacts/svc/1/bootstrap.zip', provenanceKey('svc' as ProjectName, '1' as Version)]);
    expect(await store.head(provenanceKey('svc' as ProjectName, '1' as Version))).toBeUndefined();
    expect(await store.head(provenanceKey('svc' as ProjectName, '2' as Version))).toBeDefined();
  });

  it("keeps young versions and, with --pr, sweeps only that pull request's preview versions", async () => {
    const store = make();
    await publish(store, 'api', '10', { preview: true, pr: '51' });
    await publish(store, 'api', '11', { preview: true, pr: '51' });
    await publish(store, 'api', '12', { preview: true, pr: '52' });
    await publish(store, 'api', '13');
    await ledger(store, 'api', 'pr-51', ['11']);
    const young = await runRetention({ store, olderThanDays: 30, keep: 0, inFlightMs: 0 });
    expect(young.deleted).toEqual([]);
    await sleep(1100);
    const swept = await runRetention({ store, pr: 51, inFlightMs: 1000 });
    expect(swept.deleted.map((v) => `${v.namespace}/${v.version}`)).toEqual(['preview/10']);
    expect(swept.kept.find((k) => k.version === '11')?.reason).toBe('current');
    expect(await readStoredManifest(store, 'api' as ProjectName, '12' as Version, 'preview')).toBeDefined();
    expect(await readStoredManifest(store, 'api' as ProjectName, '13' as Version)).toBeDefined();
  });
});

describe('retention and incomplete multipart uploads (S3)', () => {
  it('names incomplete uploads under the store and how to end them, leaves them alone, and says nothing when there are none', async () => {
    const prefix = `inc${randomBytes(4).toString('hex')}`;
    const store = openStore(parseStoreUrl(`s3://${bucket}/${prefix}`));
    await publish(store, 'svc', '1');
    const quiet: string[] = [];
    await runRetention({ store, olderThanDays: 30, keep: 1, inFlightMs: 0, dryRun: true, log: (l) => quiet.push(l) });
    expect(quiet.filter((l) => l.includes('incomplete multipart'))).toEqual([]);

    const { CreateMultipartUploadCommand, ListMultipartUploadsCommand, S3Client } = await import('@aws-sdk/client-s3');
    const s3 = new S3Client({
      region: 'us-east-1',
      endpoint: s3Bucket().moto.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    for (const v of ['2', '3'])
      await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: `${prefix}/artifacts/svc/${v}/big.tar.gz`, ChecksumAlgorithm: 'SHA256' }));
    // another store's upload in the same bucket is not this store's business
    await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: `other${prefix}/artifacts/svc/9/big.tar.gz` }));
    expect((await store.listIncompleteUploads!('')).map((u) => u.key).sort()).toEqual(['artifacts/svc/2/big.tar.gz', 'artifacts/svc/3/big.tar.gz']);

    const lines: string[] = [];
    await runRetention({ store, olderThanDays: 30, keep: 1, inFlightMs: 0, log: (l) => lines.push(l) });
    const line = lines.find((l) => l.includes('incomplete multipart'));
    expect(line).toMatch(
      new RegExp(`^2 incomplete multipart upload\\(s\\) in s3://${bucket}/${prefix} \\(oldest started \\d{4}-.*AbortIncompleteMultipartUpload lifecycle rule`),
    );
    const left = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `${prefix}/` }));
    expect(left.Uploads?.length).toBe(2);
  });
});
