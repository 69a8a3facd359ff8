import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unusedAwsClients } from '@buildonce/testing';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { imageUriOf, parseManifest, sha256File } from '@buildonce/artifact';
import { DeployError, type DeployRequest, type DeployResult } from '@buildonce/deploy';
import { describeFailure } from '@buildonce/errors';
import {
  artifactKey,
  ensureRegionCopy,
  openRegionStore,
  openStore,
  parseStoreUrl,
  publishArtifact,
  publishMetadataFromEnv,
  readStoredManifest,
  storedManifestKey,
  verifyArtifact,
  type BlobStore,
  type S3BlobStore,
} from '@buildonce/store';
import { startFaultProxy, startMoto, tempDir, type FaultProxy, type MotoServer } from '@buildonce/testing';
import { parseConfig, resolveEnvironment, type VerifyCheck } from '@buildonce/config';
import { isInterrupted, listSeqs, readCurrent, readHistory, readLease, type HistoryEntry } from '@buildonce/ledger';
import { promoteVersion, type PromoteRequest, type PromotionRegion } from '@buildonce/promotion';
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
 * - each command either succeeded or failed with one clear line (an expected BuildonceError);
 * - regions (an environment in three regions, two with their own region bucket): every region runs a
 *   version whose replica in that region's store verifies against the home manifest, no replica differs
 *   from its home artifact, every region runs the pointer's version unless an entry (or the lease of an
 *   unrecorded promotion) says why not, every deploy in every region is recorded, and every entry carries a
 *   result per region (interrupted ones excepted: what their regions ran is unknown, so the next promotion
 *   deploys every region).
 * Prints: faults injected, operations, inconsistencies (must be 0).
 */
const FAULT_RATE = 0.3;
/**
 * Fault rate of the multi-region operations: a 3-region promotion makes about three times the requests of
 * a single-region one, and at 30 % almost none of them would reach its region copies and deploys.
 */
const REGION_FAULT_RATE = 0.15;
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
const regionSummary: string[] = [];

beforeAll(async () => {
  moto = await startMoto();
  await moto.createBucket(bucket);
  proxy = await startFaultProxy({ target: moto.endpoint, seed: Number(process.env.BUILDONCE_FAULT_SEED ?? 11) });
  Object.assign(process.env, moto.env, { AWS_ENDPOINT_URL: proxy.endpoint });
  store = openStore(parseStoreUrl(`s3://${bucket}/faults`));
  for (const g of REGIONS) if (g.bucket) await moto.createBucket(g.bucket, g.name);
});
afterAll(async () => {
  await proxy?.stop();
  await moto?.stop();
});

/**
 * The multi-region environment `world`: us-east-1 deploys from the home store, eu-west-1 and
 * ap-southeast-2 from their own region buckets (on moto, through the fault proxy like the home store).
 */
const REGIONS: { name: string; bucket?: string }[] = [
  { name: 'us-east-1' },
  { name: 'eu-west-1', bucket: 'fault-suite-euw1' },
  { name: 'ap-southeast-2', bucket: 'fault-suite-apse2' },
];
const regionUrl = (g: { bucket?: string }) => (g.bucket ? `s3://${g.bucket}/faults` : `s3://${bucket}/faults`);
const rcfg = parseConfig({
  store: `s3://${bucket}/faults`,
  environments: [{ name: 'world', requires: [], regions: Object.fromEntries(REGIONS.map((g) => [g.name, g.bucket ? { store: regionUrl(g) } : {}])) }],
});

/**
 * A region's deploy target that runs what Lambda would: the code object under the version's key in the
 * store it is given (the region's own), read with HeadObject through the fault proxy; `runs` is what it
 * ran, in order (restores included).
 */
class RegionTarget extends FakeTarget {
  runs: { version: string; sha256Base64?: string; size: number }[] = [];
  constructor(readonly region: string) {
    super();
  }
  override async deploy(r: DeployRequest): Promise<DeployResult> {
    const want = regionUrl(REGIONS.find((g) => g.name === this.region)!);
    if (r.store.location.url !== want)
      inconsistencies.push(`${this.region}: deploy of ${r.version} reads ${r.store.location.url}, not the region's store ${want}`);
    const key = artifactKey(r.project, r.version, r.stored.manifest.files[0]!.name, r.namespace);
    const info = await r.store.head(key);
    if (!info) {
      inconsistencies.push(`${this.region}: deploy of ${r.version} found no code object ${r.store.uriOf(key)} (copies come before any deploy)`);
      throw new DeployError(`${r.store.uriOf(key)} is missing`);
    }
    const res = await super.deploy(r);
    this.runs.push({ version: r.version, sha256Base64: info.sha256Base64, size: info.size });
    return res;
  }
}
const regionTargets = Object.fromEntries(REGIONS.map((g) => [g.name, new RegionTarget(g.name)]));
let regionStores: Record<string, S3BlobStore> | undefined;
/** region stores, opened once the proxy is the endpoint (a client per region, as promotion opens them) */
const storesOfRegions = (): Record<string, S3BlobStore> =>
  (regionStores ??= Object.fromEntries(REGIONS.map((g) => [g.name, g.bucket ? openRegionStore(regionUrl(g), g.name) : (store as S3BlobStore)])));
const world = resolveEnvironment(rcfg, 'world' as EnvironmentName);
const worldReq = (version: string): PromoteRequest => ({
  ...req(version, 'dev'),
  environment: world,
  target: regionTargets['us-east-1']!,
  regions: REGIONS.map((g): PromotionRegion => ({ name: g.name, store: storesOfRegions()[g.name]!, home: !g.bucket, target: regionTargets[g.name]! })),
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

/**
 * A version in a region's store verifies (every file's size and sha256 against the region's manifest) and
 * that manifest names the home manifest's files exactly (no replica differs from its home artifact).
 * @returns false when the region holds no manifest of the version
 */
async function checkReplica(region: string, v: string, what: string): Promise<boolean> {
  const rs = storesOfRegions()[region]!;
  const m = await readStoredManifest(rs, project as ProjectName, v as Version);
  if (!m) return false;
  await verifyArtifact(rs, project as ProjectName, v as Version).catch((e: Error) => inconsistencies.push(`${what}: ${region} replica of ${v}: ${e.message}`));
  const h = await readStoredManifest(store, project as ProjectName, v as Version);
  const files = (x: typeof m) => JSON.stringify(x.manifest.files.map((f) => [f.name, f.size, f.sha256]));
  if (h && files(h) !== files(m)) inconsistencies.push(`${what}: ${region} replica of ${v} differs from the home artifact: ${files(m)} vs ${files(h)}`);
  return true;
}

/**
 * The region invariants of `world` (faults off): entries carry every region's result; every region runs a
 * version whose replica in its own store verifies, with the bytes the target read equal to the home
 * manifest's; each region runs the pointer's version, or (unless `repaired`) an entry after the pointer
 * or the lease of a promotion not yet recorded names what it runs; every deploy in a region is recorded
 * (its entry's region result, the restore of the previous version, or an interrupted entry) and no region
 * is recorded as succeeded more often than it deployed; every region copy of every version verifies.
 */
async function checkRegions(when: string, repaired: boolean): Promise<void> {
  const envName = 'world' as EnvironmentName;
  const seqs = await listSeqs(store, project as ProjectName, envName);
  if (seqs.some((s, i) => s !== i + 1)) inconsistencies.push(`world ${when}: history seqs not contiguous: ${seqs.join(',')}`);
  const entries = await readHistory(store, project as ProjectName, envName);
  const cur = await readCurrent(store, project as ProjectName, envName);
  const lease = await readLease(store, project as ProjectName, envName);
  const names = JSON.stringify(REGIONS.map((g) => g.name));
  for (const e of entries)
    if (!isInterrupted(e) && JSON.stringify(Object.keys(e.regions ?? {})) !== names)
      inconsistencies.push(`world ${when}: seq ${e.seq} records regions ${JSON.stringify(Object.keys(e.regions ?? {}))}, not ${names}`);
  const newest = entries.filter((e) => e.status === 'succeeded').at(-1);
  if (newest && cur?.entry.seq !== newest.seq)
    inconsistencies.push(`world ${when}: pointer at seq ${cur?.entry.seq} but newest succeeded entry is seq ${newest.seq}`);
  const after = entries.filter((e) => e.seq > (cur?.entry.seq ?? 0));
  for (const g of REGIONS) {
    const t = regionTargets[g.name]!;
    const running = t.runs.at(-1);
    if (!running) {
      if (cur) inconsistencies.push(`world ${when}: pointer says ${cur.entry.version} but ${g.name} never deployed`);
      continue;
    }
    const home = await readStoredManifest(store, project as ProjectName, running.version as Version);
    const file = home?.manifest.files[0];
    if (!file) inconsistencies.push(`world ${when}: ${g.name} runs ${running.version}, which the home store no longer holds`);
    else if (running.size !== file.size || (running.sha256Base64 && running.sha256Base64 !== Buffer.from(file.sha256, 'hex').toString('base64')))
      inconsistencies.push(`world ${when}: ${g.name} ran ${running.version} from an object that is not its home bytes`);
    if (!(await checkReplica(g.name, running.version, `world ${when}`)))
      inconsistencies.push(`world ${when}: ${g.name} runs ${running.version} but its store holds no manifest of it`);
    if (running.version === cur?.entry.version) continue;
    const r = running.version;
    const explained =
      !repaired &&
      (after.some((e) => e.version === r && (isInterrupted(e) || !!e.regions?.[g.name]?.deploy)) ||
        (lease?.state === 'held' && lease.version === r) ||
        !!lease?.unrecorded?.some((l) => l.version === r));
    if (!explained)
      inconsistencies.push(`world ${when}: pointer says ${cur?.entry.version ?? 'none'} but ${g.name} runs ${r}${repaired ? '' : ' and no entry says why'}`);
  }
  for (const g of REGIONS) {
    const count = new Map<string, number>();
    for (const x of regionTargets[g.name]!.runs) count.set(x.version, (count.get(x.version) ?? 0) + 1);
    const recorded = new Map<string, number>();
    const okRecorded = new Map<string, number>();
    const add = (m: Map<string, number>, v: string | null | undefined) => v && m.set(v, (m.get(v) ?? 0) + 1);
    for (const e of entries) {
      const rr = e.regions?.[g.name];
      if (isInterrupted(e)) {
        add(recorded, e.version);
        add(recorded, e.previousVersion);
      }
      if (rr?.deploy) add(recorded, e.version);
      if (rr?.status === 'restored') add(recorded, e.previousVersion);
      if (e.status === 'succeeded' && rr?.status === 'succeeded') add(okRecorded, e.version);
    }
    // a promotion whose record failed leaves its lease (held, or carried as unrecorded) until the next one records it as interrupted
    if (!repaired)
      for (const l of [...(lease?.state === 'held' ? [lease] : []), ...(lease?.unrecorded ?? [])]) {
        add(recorded, l.version);
        add(recorded, cur?.entry.version);
      }
    for (const [v, n] of count)
      if ((recorded.get(v) ?? 0) < n) inconsistencies.push(`world ${when}: ${g.name} deployed ${v} ${n} time(s) but recorded ${recorded.get(v) ?? 0} time(s)`);
    for (const [v, n] of okRecorded)
      if (n > (count.get(v) ?? 0))
        inconsistencies.push(`world ${when}: ${g.name} recorded ${v} as succeeded ${n} time(s) but deployed it ${count.get(v) ?? 0} time(s)`);
  }
  const versions = [...new Set([...entries.map((e) => e.version), ...Object.values(regionTargets).flatMap((t) => t.runs.map((x) => x.version))])];
  for (const g of REGIONS.filter((x) => x.bucket)) for (const v of versions) await checkReplica(g.name, v, `world ${when}`);
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

  it('regions: promotions and rollbacks of a 3-region environment; every region runs what the ledger says, from a verified replica', async () => {
    proxy.setRate(REGION_FAULT_RATE);
    const batch = published.slice(0, 4);
    /** a command retried like a CI job re-run, up to `n` attempts */
    const attempts = async (n: number, what: string, fn: () => Promise<unknown>) => {
      for (let i = 0; i < n; i++) if ((await op(what, fn)) !== undefined) return;
    };
    // two promotions at a time (the lock serialises them), then one after the other, then rollbacks
    await Promise.all(batch.slice(0, 2).map((v) => attempts(3, `promote ${v} (world)`, () => promoteVersion(worldReq(v)))));
    for (const v of batch.slice(2)) await attempts(3, `promote ${v} (world)`, () => promoteVersion(worldReq(v)));
    for (let i = 0; i < 2; i++) await attempts(2, 'rollback (world)', () => rollbackEnvironment(worldReq('0')));
    await attempts(2, 'rollback --to (world)', () => rollbackEnvironment({ ...worldReq('0'), to: batch[1] }));
    await attempts(2, `promote ${batch[3]} (world)`, () => promoteVersion(worldReq(batch[3]!)));
    // one region's deploy fails (as its Lambda update can): the regions already moved are restored
    regionTargets['ap-southeast-2']!.failNext = 'UpdateFunctionCode failed in ap-southeast-2 (injected)';
    await op(`promote ${published[6]} (world, ap-southeast-2 fails)`, () => promoteVersion(worldReq(published[6]!)));
    regionTargets['eu-west-1']!.failNext = 'UpdateFunctionCode failed in eu-west-1 (injected)';
    await op('rollback (world, eu-west-1 fails)', () => rollbackEnvironment(worldReq('0')));
    for (const t of Object.values(regionTargets)) t.failNext = undefined;
    proxy.setRate(0);
    await new Promise((r) => setTimeout(r, 3_500));
    await checkRegions('after faults', false);
    const h = await readHistory(store, project as ProjectName, 'world' as EnvironmentName);
    regionSummary.push(
      `world history: ${h.map((e) => `${e.version}${e.rollback ? ' rollback' : ''} ${isInterrupted(e) ? 'interrupted' : e.status}${e.regions ? ` [${REGIONS.map((g) => `${e.regions![g.name]!.status}/${e.regions![g.name]!.copy}`).join(' ')}]` : ''}`).join('; ')}; deploys per region: ${REGIONS.map((g) => `${g.name} ${regionTargets[g.name]!.runs.length}`).join(', ')}`,
    );
    // the next promotion without faults records what was interrupted and deploys every region
    for (const v of [published[4]!, published[5]!]) {
      const r = await promoteVersion(worldReq(v));
      expect(r.status).toBe('promoted');
      expect(Object.values(r.status === 'promoted' ? r.entry.regions! : {}).map((x) => x.status)).toEqual(REGIONS.map(() => 'succeeded'));
    }
    await checkRegions('after two promotions without faults', true);
  });

  it('retention: deletes or fails closed with one line; current and rollback window always survive', async () => {
    const now = new Date(Date.now() + 3 * 24 * 3600 * 1000);
    const regionStores = REGIONS.filter((g) => g.bucket).map((g) => ({ region: g.name, store: storesOfRegions()[g.name]! }));
    // a version copied to the regions by a promotion that then stopped: never released, so nothing protects it
    const orphan = '7050' as Version;
    await publishFake(store, { project: project as ProjectName, version: orphan });
    const stored = (await readStoredManifest(store, project as ProjectName, orphan))!;
    for (const { region, store: replica } of regionStores)
      await ensureRegionCopy({
        home: store as S3BlobStore,
        replica,
        region,
        project: project as ProjectName,
        version: orphan,
        namespace: 'trusted',
        stored,
        log: () => undefined,
      });
    let regionDeleted = 0;
    // faults only for the retention runs: the orphan above is the suite's setup, not an operation under test
    proxy.setRate(FAULT_RATE);
    for (let i = 0; i < 3; i++)
      regionDeleted +=
        (await op('retention', () => runRetention({ store, keep: 0, olderThanDays: 1, inFlightMs: 0, now, concurrency: 4, regionStores })))?.regionDeleted
          ?.length ?? 0;
    // the same sweep without faults completes what faults stopped: the orphan's copies go with its home version
    proxy.setRate(0);
    regionDeleted += (await runRetention({ store, keep: 0, olderThanDays: 1, inFlightMs: 0, now, concurrency: 4, regionStores })).regionDeleted?.length ?? 0;
    regionSummary.push(`retention deleted ${regionDeleted} region copies`);
    if (await readStoredManifest(store, project as ProjectName, orphan)) inconsistencies.push(`retention kept the unprotected version ${orphan}`);
    for (const { region, store: replica } of regionStores)
      if (await readStoredManifest(replica, project as ProjectName, orphan))
        inconsistencies.push(`retention kept the ${region} copy of ${orphan}, which the home store no longer holds`);
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
    // regions: what every region runs survived in its store; a rollback restores every region from verified replicas
    const wrb = await rollbackEnvironment(worldReq('0'));
    expect(wrb.status).toBe('promoted');
    await checkRegions('after retention and a rollback', true);
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
    for (const l of regionSummary) console.log(`  ${l}`);
    for (const l of failureLines) console.log(`  failed clearly: ${l.slice(0, 240)}`);
    for (const i of inconsistencies) console.log(`  inconsistency: ${i}`);
    expect(proxy.stats.injected).toBeGreaterThan(50);
    expect(inconsistencies).toEqual([]);
  });
});
