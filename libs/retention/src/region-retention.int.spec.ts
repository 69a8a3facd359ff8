import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureRegionCopy, openRegionStore, readStoredManifest, verifyArtifact, type BlobStore, type S3BlobStore } from '@buildonce/store';
import { appendEntry } from '@buildonce/ledger';
import { draft, publishTestZip, removeTempDirs, startMoto, type MotoServer } from '@buildonce/testing';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';
import { runRetention } from './retention';

/*
 * Region copies follow the home store: a version retention deletes at home goes from every region store,
 * a version the ledger protects stays in every region, and a region copy whose home version is gone goes too.
 */
let moto: MotoServer;
let home: S3BlobStore;
let euw1: S3BlobStore;
const project = 'svc' as ProjectName;

beforeAll(async () => {
  moto = await startMoto();
  await moto.createBucket('ret-home');
  await moto.createBucket('ret-euw1', 'eu-west-1');
  home = openRegionStore('s3://ret-home/p', 'us-east-1', { env: moto.env });
  euw1 = openRegionStore('s3://ret-euw1/p', 'eu-west-1', { env: moto.env });
});
afterAll(async () => {
  await moto?.stop();
  removeTempDirs();
});

async function publishAndCopy(version: string): Promise<void> {
  await publishTestZip({ store: home, project, version, size: 2000 });
  const stored = await verifyArtifact(home, project, version as Version);
  await ensureRegionCopy({ home, replica: euw1, region: 'eu-west-1', project, version: version as Version, namespace: 'trusted', stored, log: () => {} });
}

const present = async (store: BlobStore, v: string) => !!(await readStoredManifest(store, project, v as Version));

describe('retention of region copies', () => {
  it('deletes region copies of versions deleted at home (or gone from it), never of protected ones', async () => {
    for (const v of ['1', '2', '3', '9']) await publishAndCopy(v);
    // prod runs 2 (protected); 9 was deleted at home long ago (only its region copy is left)
    await appendEntry(home, draft('2' as Version, { project, environment: 'prod' as EnvironmentName }));
    for (const k of ['artifacts/svc/9/manifest.json', 'artifacts/svc/9/bootstrap.zip']) await home.delete(k);
    const opts = { store: home, regionStores: [{ region: 'eu-west-1', store: euw1 }], keep: 1, olderThanDays: 30, now: new Date(Date.now() + 40 * 86_400_000) };

    const lines: string[] = [];
    const dry = await runRetention({ ...opts, dryRun: true, log: (l) => lines.push(l) });
    expect(dry.regionDeleted!.map((v) => v.version).sort()).toEqual(['1', '9']);
    expect(lines).toContainEqual(expect.stringMatching(/^\[svc\] dry run: would delete the eu-west-1 copy of version 1 \(s3:\/\/ret-euw1\/p, [\d.]+ kB\)$/));
    expect(await present(euw1, '1')).toBe(true);

    const r = await runRetention(opts);
    expect(r.deleted.map((v) => v.version)).toEqual(['1']);
    expect(r.regionDeleted!.map((v) => [v.region, v.version]).sort()).toEqual([
      ['eu-west-1', '1'],
      ['eu-west-1', '9'],
    ]);
    expect([await present(euw1, '1'), await present(euw1, '2'), await present(euw1, '3'), await present(euw1, '9')]).toEqual([false, true, true, false]);
    const left: string[] = [];
    for await (const o of euw1.list('artifacts/svc/')) left.push(o.key);
    expect(left.filter((k) => /\/(1|9)\//.test(k))).toEqual([]);
  });
});
