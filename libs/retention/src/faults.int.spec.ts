import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unusedAwsClients } from '@buildonce/testing';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { imageUriOf, parseManifest, sha256File } from '@buildonce/artifact';
import type { DeployRequest, DeployResult } from '@buildonce/deploy';
import { describeFailure } from '@buildonce/errors';
import {
  openStore,
  parseStoreUrl,
  publishArtifact,
  publishMetadataFromEnv,
  readStoredManifest,
  storedManifestKey,
  verifyArtifact,
  type BlobStore,
} from '@buildonce/store';
import { startFaultProxy, startMoto, tempDir, type FaultProxy, type MotoServer } from '@buildonce/testing';
import { parseConfig, resolveEnvironment, type VerifyCheck } from '@buildonce/config';
import { isInterrupted, listSeqs, readCurrent, readHistory, type HistoryEntry } from '@buildonce/ledger';
import { promoteVersion, type PromoteRequest } from '@buildonce/promotion';
import { runRetention } from './retention';
import { rollbackEnvironment } from '@buildonce/promotion';
import { FakeTarget, publishFake } from '@buildonce/testing';
import type { ProjectName, Version, EnvironmentName } from '@buildonce/values';

const noAws = unusedAwsClients();

/**
 * The fault suite: publish, 10 concurrent promotions, rollbacks and retention against
 * moto_server behind a proxy that fails 30 % of requests (500, 503 SlowDown, connection reset, and
 * "applied but response lost"), then checks that everything ended consistent:
 * - no partial object: every version with a manifest verifies (sizes and sha256 of every file);
 * - history seqs contiguous, no deploy recorded twice, every deploy recorded (succeeded, or as an
 *   interrupted failure recorded by a later promotion);
 * - pointer = newest succeeded entry, and the live target runs the pointer's version;
 * - each command either succeeded or failed with one clear line (an expected BuildonceError).
 * Prints: faults injected, operations, inconsistencies (must be 0).
 */
const FAULT_RATE = 0.3;
const bucket = 'fault-suite';
const project = 'svc';
const config = parseConfig({});
const meta = { commit: 'feed', runId: '1', actor: 'fault-suite' };
let moto: MotoServer;
let proxy: FaultProxy;
let store: BlobStore;
const target = new FakeTarget();
const inconsistencies: string[] = [];
const outcomes = { operations: 0, succeeded: 0, failedClearly: 0 };
const failureLines: string[] = [];

beforeAll(async () => {
  moto = await startMoto();
  await moto.createBucket(bucket);
  proxy = await startFaultProxy({ target: moto.endpoint, seed: Number(process.env.BUILDONCE_FAULT_SEED ?? 11) });
  Object.assign(process.env, moto.env, { AWS_ENDPOINT_URL: proxy.endpoint });
  store = openStore(parseStoreUrl(`s3://${bucket}/faults`));
});
afterAll(async () => {
  await proxy?.stop();
  await moto?.stop();
});

/** Runs one command under faults: success, or a failure that must be one expected line. */
async function op<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
  outcomes.operations++;
  try {
    const r = await fn();
    outcomes.succeeded++;
    return r;
  } catch (e) {
    const report = describeFailure(e);
    const line = report.lines[0] ?? '';
    if (report.kind !== 'expected' || !line.trim() || (e as Error).message.includes('\n')) {
      inconsistencies.push(`${what}: unclear failure: ${report.lines.join(' | ').slice(0, 300)}`);
    } else {
      outcomes.failedClearly++;
      failureLines.push(`${what}: ${line}`);
    }
    return undefined;
  }
}

const env = (name: string) => resolveEnvironment(config, name as EnvironmentName);
const req = (version: string, envName: string): PromoteRequest => ({
  store,
  aws: unusedAwsClients(),
  project: project as ProjectName,
  version: version as Version,
  environment: env(envName),
  target,
  meta,
  log: () => undefined,
  lock: { ttlMs: 3_000, waitMs: 120_000 },
});

/** Ledger + target consistency of one environment (run with faults off). */
async function checkLedger(envName: string, deploysBefore: number): Promise<{ entries: HistoryEntry[] }> {
  const seqs = await listSeqs(store, project as ProjectName, envName as EnvironmentName);
  if (seqs.some((s, i) => s !== i + 1)) inconsistencies.push(`${envName}: history seqs not contiguous: ${seqs.join(',')}`);
  const entries = await readHistory(store, project as ProjectName, envName as EnvironmentName);
  const succeeded = entries.filter((e) => e.status === 'succeeded');
  const cur = await readCurrent(store, project as ProjectName, envName as EnvironmentName);
  const newest = succeeded.at(-1);
  if (newest && cur?.entry.seq !== newest.seq)
    inconsistencies.push(`${envName}: pointer at seq ${cur?.entry.seq} but newest succeeded entry is seq ${newest.seq}`);
  const deployed = target.deployed.slice(deploysBefore);
  const count = (xs: string[]) => xs.reduce((m, v) => m.set(v, (m.get(v) ?? 0) + 1), new Map<string, number>());
  const deploys = count(deployed);
  const recordedOk = count(succeeded.map((e) => e.version));
  // interrupted promotions, and failed verifications (held or restored) recorded with the deploy they made
  const interrupted = count(entries.filter((e) => e.status === 'failed' && (isInterrupted(e) || e.deploy)).map((e) => e.version));
  for (const [v, n] of deploys) {
    const rec = (recordedOk.get(v) ?? 0) + (interrupted.get(v) ?? 0);
    if (rec < n) inconsistencies.push(`${envName}: version ${v} deployed ${n} time(s) but recorded ${rec} time(s)`);
  }
  for (const [v, n] of recordedOk)
    if (n > (deploys.get(v) ?? 0))
      inconsistencies.push(`${envName}: version ${v} recorded as succeeded ${n} time(s) but deployed ${deploys.get(v) ?? 0} time(s)`);
  const writeIds = entries.map((e) => e.writeId).filter(Boolean);
  if (new Set(writeIds).size !== writeIds.length) inconsistencies.push(`${envName}: one append recorded twice`);
  return { entries };
}

/** No partial object: every version whose manifest exists verifies completely. */
async function checkObjects(versions: string[]): Promise<number> {
  let complete = 0;
  for (const v of versions) {
    const m = await readStoredManifest(store, project as ProjectName, v as Version);
    if (!m) continue;
    complete++;
    await verifyArtifact(store, project as ProjectName, v as Version).catch((e: Error) =>
      inconsistencies.push(`version ${v}: manifest present but ${e.message}`),
    );
  }
  return complete;
}

describe('fault suite: 30 % injected faults (500, 503, reset, lost response) in front of moto_server', () => {
  const versions = Array.from({ length: 12 }, (_, i) => String(7000 + i));
  const published: string[] = [];
  let deployStart = 0;

  it('publish: each version is published completely or fails with one line; nothing partial', async () => {
    proxy.setRate(FAULT_RATE);
    for (const v of versions) {
      let ok = false;
      for (let attempt = 0; attempt < 3 && !ok; attempt++)
        ok = (await op(`publish ${v}`, () => publishFake(store, { project: project as ProjectName, version: v as Version }))) !== undefined;
      if (ok) published.push(v);
    }
    proxy.setRate(0);
    const complete = await checkObjects(versions);
    expect(complete).toBeGreaterThanOrEqual(published.length);
    expect(published.length).toBeGreaterThanOrEqual(8);
  });

  it('promote: 10 concurrent promotions to dev, then rollbacks; the ledger matches the deploys', async () => {
    deployStart = target.deployed.length;
    proxy.setRate(FAULT_RATE);
    const batch = published.slice(0, 10);
    await Promise.all(batch.map((v) => op(`promote ${v}`, () => promoteVersion(req(v, 'dev')))));
    for (let i = 0; i < 3; i++) await op('rollback', () => rollbackEnvironment(req('0', 'dev')));
    await op('rollback --to', () => rollbackEnvironment({ ...req('0', 'dev'), to: batch[0] }));
    proxy.setRate(0);
    // the next promotion (no faults) records any promotion interrupted by a failed record/release
    await new Promise((r) => setTimeout(r, 3_500));
    const final = published[10] ?? published[0]!;
    const r = await promoteVersion(req(final, 'dev'));
    expect(['promoted', 'already-current']).toContain(r.status);
    await checkLedger('dev', deployStart);
    const cur = await readCurrent(store, project as ProjectName, 'dev' as EnvironmentName);
    if (cur?.entry.version !== target.deployed.at(-1))
      inconsistencies.push(`dev: pointer says ${cur?.entry.version} but the target runs ${target.deployed.at(-1)}`);
  });

  it('retention: deletes or fails closed with one line; current and rollback window always survive', async () => {
    proxy.setRate(FAULT_RATE);
    const now = new Date(Date.now() + 3 * 24 * 3600 * 1000);
    for (let i = 0; i < 3; i++) await op('retention', () => runRetention({ store, keep: 0, olderThanDays: 1, inFlightMs: 0, now, concurrency: 4 }));
    proxy.setRate(0);
    await checkObjects(versions);
    const { entries } = await checkLedger('dev', deployStart);
    const cur = await readCurrent(store, project as ProjectName, 'dev' as EnvironmentName);
    const mustStay = new Set([
      cur!.entry.version,
      ...entries
        .filter((e) => e.status === 'succeeded')
        .slice(-2)
        .map((e) => e.version),
    ]);
    for (const v of mustStay)
      await verifyArtifact(store, project as ProjectName, v).catch((e: Error) =>
        inconsistencies.push(`retention deleted protected version ${v}: ${e.message}`),
      );
    // a rollback still works after retention
    const rb = await rollbackEnvironment(req('0', 'dev'));
    expect(rb.status).toBe('promoted');
    await checkLedger('dev', deployStart);
  });

  it("held verifications and failed restores: every recovery ends with the target running the pointer's version", async () => {
    const [a, b, c] = ['7100', '7101', '7102'];
    const fails = (v: string, onFailure: 'hold' | 'rollback'): VerifyCheck => ({
      kind: 'command',
      command: ['node', '-e', `process.exit(process.env.BUILDONCE_VERSION === "${v}" ? 3 : 0)`],
      onFailure,
    });
    const vcfg = parseConfig({ environments: [{ name: 'dev' }, { name: 'qa', verify: [fails(b, 'hold'), fails(c, 'rollback')] }] });
    const qa = (version: string): PromoteRequest => {
      const environment = resolveEnvironment(vcfg, 'qa' as EnvironmentName);
      return {
        ...req(version, 'dev'),
        environment,
        verify: {
          checks: environment.kind === 'chain' ? environment.verify! : [],
          workspaceRoot: process.cwd(),
          lambda: noAws.lambda,
          cloudwatch: noAws.cloudwatch,
        },
      };
    };
    const pub: Record<string, Awaited<ReturnType<typeof publishFake>>> = {};
    for (const v of [a, b, c]) {
      pub[v] = await publishFake(store, { project: project as ProjectName, version: v as Version });
      await promoteVersion({ ...req(v, 'dev'), environment: resolveEnvironment(vcfg, 'dev' as EnvironmentName) });
    }
    const start = target.deployed.length;
    const runsPointer = async (when: string) => {
      const cur = await readCurrent(store, project as ProjectName, 'qa' as EnvironmentName);
      if (cur?.entry.version !== target.deployed.at(-1))
        inconsistencies.push(`qa ${when}: pointer says ${cur?.entry.version} but the target runs ${target.deployed.at(-1)}`);
    };
    proxy.setRate(FAULT_RATE);
    for (let i = 0; i < 3 && (await readCurrent(store, project as ProjectName, 'qa' as EnvironmentName).catch(() => undefined))?.entry.version !== a; i++)
      await op(`promote ${a} (qa)`, () => promoteVersion(qa(a)));
    await op(`promote ${b} (qa, held)`, () => promoteVersion(qa(b)));
    await op('rollback after a held failure (qa)', () => rollbackEnvironment(qa('0')));
    proxy.setRate(0);
    // the recovery, completed without faults when it failed under them: promote of the pointer's version redeploys it
    const cur = (await readCurrent(store, project as ProjectName, 'qa' as EnvironmentName))?.entry.version;
    if (cur && target.deployed.at(-1) !== cur) await promoteVersion(qa(cur));
    await runsPointer('after a held failure and its recovery');

    // a restore that cannot start: the pointer's version lost its file
    const back = (await readCurrent(store, project as ProjectName, 'qa' as EnvironmentName))!.entry.version;
    await store.delete(`artifacts/${project}/${back}/${pub[back]!.manifest.files[0]!.name}`);
    proxy.setRate(FAULT_RATE);
    await op(`promote ${c} (qa, failing, restore impossible)`, () => promoteVersion(qa(c)));
    proxy.setRate(0);
    await publishFake(store, { project: project as ProjectName, version: back }); // the repair: publishing again re-uploads the missing file
    await verifyArtifact(store, project as ProjectName, back).catch((e: Error) => inconsistencies.push(`qa: re-publish did not repair ${back}: ${e.message}`));
    proxy.setRate(FAULT_RATE);
    await op(`promote ${back} (qa, after the repair)`, () => promoteVersion(qa(back)));
    proxy.setRate(0);
    await new Promise((r) => setTimeout(r, 3_500));
    const r = await promoteVersion(qa(back));
    expect(['promoted', 'already-current']).toContain(r.status);
    await runsPointer('after a failed restore and its repair');
    await checkLedger('qa', start);
  });

  it('image deploys: the target runs repository@<verified digest>; a record naming another digest never goes live', async () => {
    const imageProject = 'svc-image';
    const repository = '127.0.0.1:5000/svc-image';
    /** runs what the verified manifest names, as the Lambda target does (imageUriOf(req.stored)) */
    class FakeImageTarget extends FakeTarget {
      images: string[] = [];
      override async deploy(r: DeployRequest): Promise<DeployResult> {
        const res = await super.deploy(r);
        this.images.push(imageUriOf(r.stored) ?? `no image in ${r.version}`);
        return res;
      }
    }
    const images = new FakeImageTarget();
    /** an oci-image version: its image manifest file (the digest is its sha256) and a registry record by digest */
    const publishImage = async (version: string) => {
      const dir = tempDir('fake-image-');
      writeFileSync(
        join(dir, 'image-manifest.json'),
        JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', annotations: { version } }),
      );
      const d = await sha256File(join(dir, 'image-manifest.json'));
      const digest = `sha256:${d.hex}`;
      const manifest = parseManifest({
        schemaVersion: 1,
        project: imageProject,
        version,
        kind: 'oci-image',
        files: [{ name: 'image-manifest.json', size: d.size, sha256: d.hex }],
        runtime: 'provided.al2023',
        architecture: 'arm64',
        toolchain: 'test',
        image: { digest, platform: 'linux/arm64' },
      });
      await publishArtifact({
        store,
        manifest,
        dir,
        metadata: publishMetadataFromEnv({ GITHUB_SHA: `sha-${version}` }),
        namespace: 'trusted',
        registry: { repository, uri: `${repository}@${digest}`, tags: [version] },
      });
      return digest;
    };
    const digests: Record<string, string> = {};
    const imageVersions = ['7200', '7201', '7202', '7203'];
    proxy.setRate(FAULT_RATE);
    for (const v of imageVersions) for (let i = 0; i < 3 && !digests[v]; i++) digests[v] = (await op(`publish image ${v}`, () => publishImage(v))) ?? '';
    proxy.setRate(0);
    for (const v of imageVersions) if (!digests[v]) digests[v] = await publishImage(v);

    // a tampered record: the stored manifest of 7203 now names 7201's image (another digest in the registry)
    const tamperedKey = storedManifestKey(imageProject as ProjectName, '7203' as Version);
    const stored = (await readStoredManifest(store, imageProject as ProjectName, '7203' as Version))!;
    const forged = JSON.stringify({ ...stored, registry: { ...stored.registry!, uri: `${repository}@${digests['7201']}` } });
    await store.delete(tamperedKey);
    await store.putBytesIfAbsent(tamperedKey, Buffer.from(forged));

    const imageReq = (version: string): PromoteRequest => ({ ...req(version, 'dev'), project: imageProject as ProjectName, target: images });
    proxy.setRate(FAULT_RATE);
    for (const v of ['7200', '7201', '7202', '7203']) await op(`promote image ${v}`, () => promoteVersion(imageReq(v)));
    await op('rollback image', () => rollbackEnvironment(imageReq('0')));
    proxy.setRate(0);
    await new Promise((r) => setTimeout(r, 3_500));
    // the next promotion without faults records a deploy whose record was lost, and runs what it records
    const r = await promoteVersion(imageReq('7202'));
    expect(['promoted', 'already-current']).toContain(r.status);
    for (const uri of images.images) {
      const v = Object.keys(digests).find((k) => uri === `${repository}@${digests[k]}`);
      if (!v) inconsistencies.push(`image deploy ran ${uri}, which is no published version's verified digest`);
    }
    images.deployed.forEach((v, i) => {
      if (images.images[i] !== `${repository}@${digests[v]}`)
        inconsistencies.push(`image deploy of ${v} ran ${images.images[i]}, not its verified digest ${digests[v]}`);
    });
    if (images.deployed.includes('7203')) inconsistencies.push('the tampered image record 7203 was deployed');
    const now = (await readCurrent(store, imageProject as ProjectName, 'dev' as EnvironmentName))?.entry.version;
    if (now !== images.deployed.at(-1)) inconsistencies.push(`image dev: pointer says ${now} but the target runs ${images.deployed.at(-1)}`);
    expect(failureLines.some((l) => l.startsWith('promote image 7203'))).toBe(true);
  });

  it('reports the counts: inconsistencies must be 0', () => {
    const f = proxy.stats.faults;
    const summary =
      `fault suite: faults injected: ${proxy.stats.injected} (500: ${f['500']}, 503: ${f['503']}, reset: ${f.reset}, lost: ${f.lost}) of ${proxy.stats.requests} requests; ` +
      `operations: ${outcomes.operations} (${outcomes.succeeded} succeeded, ${outcomes.failedClearly} failed with one clear line); inconsistencies: ${inconsistencies.length}`;
    console.log(summary);
    for (const l of failureLines) console.log(`  failed clearly: ${l.slice(0, 240)}`);
    for (const i of inconsistencies) console.log(`  inconsistency: ${i}`);
    expect(proxy.stats.injected).toBeGreaterThan(50);
    expect(inconsistencies).toEqual([]);
  });
});
