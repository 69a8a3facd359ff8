import pLimit from 'p-limit';
import { settleBounded } from '@buildonce/retry';
import { STORED_MANIFEST_FILE, parseStoredManifestJson } from '@buildonce/artifact';
import {
  RELEASES_ROOT,
  artifactsRoot,
  formatBytes,
  isPublishLease,
  parseArtifactKey,
  parseReleaseKey,
  versionPrefix,
  type ArtifactNamespace,
  type BlobStore,
} from '@buildonce/store';
import { LedgerError } from '@buildonce/errors';
import { parseEntry } from '@buildonce/ledger';
import { rollbackReach } from '@buildonce/promotion';
import type { ProjectName, Version } from '@buildonce/values';

/** Rollback depth retention protects: every version `rollback` repeated this many times reaches stays (see rollbackReach). */
export const ROLLBACK_WINDOW = 5;
/** Versions published less than this long ago (ms) are kept: a promotion may be verifying them right now. */
export const IN_FLIGHT_MS = 60 * 60 * 1000;

export interface RetentionOptions {
  store: BlobStore;
  /** only these projects (default: every project found in the store) */
  projects?: string[];
  /** versions published more than this many days ago may go (default 30) */
  olderThanDays?: number;
  /** the newest this-many versions per project and namespace always stay (default 10) */
  keep?: number;
  /** sweep the preview namespace of pull request <n> only (versions whose manifest says `pr: "<n>"`) */
  pr?: number;
  dryRun?: boolean;
  now?: Date;
  /** versions younger than this (ms) are in flight and stay (default {@link IN_FLIGHT_MS}, 1 hour) */
  inFlightMs?: number;
  /** deletions in flight at once (default 16) */
  concurrency?: number;
  log?: (line: string) => void;
  /**
   * the region stores of environments with `regions` (each with its own store): their copies follow the
   * home store ({@link sweepRegionCopies}); absent: only the home store is swept
   */
  regionStores?: { region: string; store: BlobStore }[];
}

/** Why a version stays. */
export type KeepReason = 'current' | 'rollback-window' | 'in-flight' | 'newest' | 'young' | 'other-pr';

export interface VersionInfo {
  project: ProjectName;
  version: Version;
  namespace: ArtifactNamespace;
  /** publish time: the manifest's LastModified (create-only object), else the newest file's */
  publishedAt: Date;
  /** bytes of all objects of the version (files + manifest) */
  bytes: number;
  keys: string[];
  complete: boolean;
  /** newest publish lease (a publish completing this version right now), if any */
  leasedAt?: Date;
}

export interface RetentionResult {
  status: 'deleted' | 'dry-run';
  deleted: VersionInfo[];
  kept: (VersionInfo & { reason: KeepReason })[];
  /** region copies deleted (or that would be, in a dry run); only with `regionStores` */
  regionDeleted?: (VersionInfo & { region: string })[];
  /** bytes freed (or that would be freed in a dry run) */
  bytesFreed: number;
}

/**
 * Scans the store layout (libs/store keys.ts) with one listing: every version's objects, sizes and
 * publish time (create-only manifests make LastModified the publish time; no per-version GET).
 */
export async function listVersions(store: BlobStore): Promise<VersionInfo[]> {
  const byId = new Map<string, VersionInfo>();
  for (const ns of ['trusted', 'preview'] as const) {
    for await (const o of store.list(artifactsRoot(ns))) {
      const k = parseArtifactKey(o.key);
      if (!k) continue;
      const id = `${k.namespace}/${k.project}/${k.version}`;
      let v = byId.get(id);
      if (!v) {
        v = { project: k.project, version: k.version, namespace: k.namespace, publishedAt: new Date(0), bytes: 0, keys: [], complete: false };
        byId.set(id, v);
      }
      v.keys.push(o.key);
      v.bytes += o.size;
      if (isPublishLease(k.file)) {
        if (!v.leasedAt || o.lastModified > v.leasedAt) v.leasedAt = o.lastModified;
      } else if (k.file === STORED_MANIFEST_FILE) {
        v.complete = true;
        v.publishedAt = o.lastModified;
      } else if (!v.complete && o.lastModified > v.publishedAt) {
        v.publishedAt = o.lastModified;
      }
    }
  }
  return [...byId.values()];
}

/**
 * Versions that must never be deleted: current in any environment (`releases/<p>/<env>/current.json`)
 * or reachable by `rollback` repeated {@link ROLLBACK_WINDOW} times in any environment, plus the version
 * a held or unrestored failed verification left running: {@link rollbackReach} over the environment's
 * whole history (`releases/<p>/<env>/history/<seq>.json`), the same stack `planRollback` plans on, so
 * retention and rollback can never disagree. Fails closed (docs/architecture.md, invariant 9): any ledger object it
 * cannot read or parse stops it with a one-line LedgerError before anything is deleted.
 * Returns a map of `<project>/<version>` → why it is kept.
 * @throws LedgerError (unparseable or vanished ledger object), StoreAccessError
 */
export async function protectedVersions(store: BlobStore): Promise<Map<string, KeepReason>> {
  const protectedSet = new Map<string, KeepReason>();
  const currents: { key: string; project: ProjectName }[] = [];
  const histories = new Map<string, { project: ProjectName; entries: { seq: number; key: string }[] }>();
  for await (const o of store.list(RELEASES_ROOT)) {
    const k = parseReleaseKey(o.key);
    if (k?.kind === 'current') currents.push({ key: o.key, project: k.project });
    else if (k?.kind === 'history') {
      const envId = `${k.project}/${k.env}`;
      const h = histories.get(envId) ?? { project: k.project, entries: [] };
      h.entries.push({ seq: k.seq, key: o.key });
      histories.set(envId, h);
    } else if (!k && o.key.includes('/history/')) {
      throw stop(store, o.key, 'not a history entry name (releases/<project>/<env>/history/<10-digit seq>.json)');
    }
  }
  const read = async (key: string) => {
    const got = await store.getBytes(key);
    if (!got) throw stop(store, key, 'listed but gone when read');
    try {
      return parseEntry(got.bytes, store.uriOf(key));
    } catch (e) {
      throw new LedgerError(`${(e as Error).message}: retention stopped, nothing was deleted (fix or restore that ledger object)`);
    }
  };
  for (const { key, project } of currents) {
    const e = await read(key);
    protectedSet.set(`${project}/${e.version}`, 'current');
  }
  const limit = pLimit(16);
  for (const { project, entries } of histories.values()) {
    // the whole history: the rollback stack can reach back to any release (promote/rollback cycles)
    const history = await Promise.all(entries.map(({ key }) => limit(() => read(key))));
    for (const v of rollbackReach(history, ROLLBACK_WINDOW)) {
      const id = `${project}/${v}`;
      if (!protectedSet.has(id)) protectedSet.set(id, 'rollback-window');
    }
  }
  return protectedSet;
}

/**
 * Deletes one version's objects: the stored manifest first (from then on the version is unpublished, never
 * half there), then its files; every deletion settles before a failure is thrown.
 */
async function deleteVersion(store: BlobStore, v: VersionInfo): Promise<void> {
  const manifest = v.keys.filter((k) => k.endsWith(`/${STORED_MANIFEST_FILE}`));
  for (const k of manifest) await store.delete(k);
  const files = v.keys.filter((k) => !manifest.includes(k));
  await settleBounded(files, files.length, (k) => store.delete(k));
}

function stop(store: BlobStore, key: string, why: string): LedgerError {
  return new LedgerError(`${store.uriOf(key)}: ${why}: retention stopped, nothing was deleted (fix or restore that ledger object)`);
}

/**
 * Deletes old artifact versions safely. A version goes only when it is older than `olderThanDays`,
 * not among the `keep` newest of its project and namespace, not current in any environment, not reachable
 * by 5 repeated rollbacks in any environment (rollbackReach), and not published in the last hour. With `pr`,
 * only preview versions published by that pull request are considered (and `keep`/`olderThanDays` do not
 * apply). Each version's `manifest.json` is deleted first, then its files and its signed provenance
 * (`provenance.intoto.json`), so a half-deleted version is
 * never seen as complete (promotion requires the manifest).
 * @returns what was (or, with dryRun, would be) deleted and kept, and the bytes freed
 * @throws LedgerError when any ledger object cannot be read (fails closed: nothing is deleted);
 *   StoreAccessError for store problems; manifest read errors propagate
 */
export async function runRetention(o: RetentionOptions): Promise<RetentionResult> {
  const now = (o.now ?? new Date()).getTime();
  const olderThanMs = (o.olderThanDays ?? 30) * 24 * 60 * 60 * 1000;
  const keep = o.keep ?? 10;
  const log = o.log ?? (() => undefined);
  if (!Number.isFinite(olderThanMs) || olderThanMs < 0) throw new RangeError(`--older-than must be a number of days >= 0, got ${o.olderThanDays}`);
  if (!Number.isInteger(keep) || keep < 0) throw new RangeError(`--keep must be an integer >= 0, got ${o.keep}`);

  const [all, guarded] = await Promise.all([listVersions(o.store), protectedVersions(o.store)]);
  const versions = all.filter((v) => !o.projects || o.projects.includes(v.project));
  const kept: RetentionResult['kept'] = [];
  const doomed: VersionInfo[] = [];

  const groups = new Map<string, VersionInfo[]>();
  for (const v of versions) groups.set(`${v.namespace}/${v.project}`, [...(groups.get(`${v.namespace}/${v.project}`) ?? []), v]);
  for (const group of groups.values()) {
    await orderNewestFirst(o.store, group, keep);
    for (const [i, v] of group.entries()) {
      const age = now - v.publishedAt.getTime();
      const guard = guarded.get(`${v.project}/${v.version}`);
      let reason: KeepReason | undefined;
      if (guard) reason = guard;
      else if (age < (o.inFlightMs ?? IN_FLIGHT_MS) || (v.leasedAt && now - v.leasedAt.getTime() < (o.inFlightMs ?? IN_FLIGHT_MS))) reason = 'in-flight';
      else if (o.pr !== undefined) {
        if (v.namespace !== 'preview' || !(await publishedByPr(o.store, v, o.pr))) reason = 'other-pr';
      } else if (i < keep) reason = 'newest';
      else if (age < olderThanMs) reason = 'young';
      if (reason) kept.push({ ...v, reason });
      else doomed.push(v);
    }
  }

  await reportIncompleteUploads(o.store, log);
  const bytesFreed = doomed.reduce((s, v) => s + v.bytes, 0);
  if (o.dryRun) {
    for (const v of doomed)
      log(
        `[${v.project}] dry run: would delete ${v.namespace === 'preview' ? 'preview ' : ''}version ${v.version} (${formatBytes(v.bytes)}, published ${v.publishedAt.toISOString()})`,
      );
    log(`dry run: would delete ${doomed.length} version(s), freeing ${formatBytes(bytesFreed)}; keeping ${kept.length}`);
    const regionDeleted = o.regionStores ? await sweepRegionCopies(o, guarded, remaining(all, doomed), now) : undefined;
    return { status: 'dry-run', deleted: doomed, kept, bytesFreed, ...(regionDeleted ? { regionDeleted } : {}) };
  }

  // every started deletion settles before a failure is reported: nothing keeps deleting after retention returns
  await settleBounded(doomed, o.concurrency ?? 16, async (v) => {
    // a publish that started after the listing (its lease is newer) is completing this version: leave it
    if (await leasedSince(o.store, v, now - (o.inFlightMs ?? IN_FLIGHT_MS))) {
      log(`[${v.project}] kept version ${v.version}: a publish is completing it`);
      kept.push({ ...v, reason: 'in-flight' });
      return;
    }
    await deleteVersion(o.store, v);
    log(`[${v.project}] deleted ${v.namespace === 'preview' ? 'preview ' : ''}version ${v.version} (${formatBytes(v.bytes)})`);
  });
  const deleted = doomed.filter((v) => !kept.some((k) => k.namespace === v.namespace && k.project === v.project && k.version === v.version));
  const freed = deleted.reduce((s, v) => s + v.bytes, 0);
  log(`deleted ${deleted.length} version(s), freed ${formatBytes(freed)}; kept ${kept.length}`);
  const regionDeleted = o.regionStores ? await sweepRegionCopies(o, guarded, remaining(all, deleted), now) : undefined;
  return { status: 'deleted', deleted, kept, bytesFreed: freed, ...(regionDeleted ? { regionDeleted } : {}) };
}

/** `<namespace>/<project>/<version>` of every home version not deleted. */
function remaining(all: VersionInfo[], gone: VersionInfo[]): Set<string> {
  const id = (v: VersionInfo) => `${v.namespace}/${v.project}/${v.version}`;
  const goneIds = new Set(gone.map(id));
  return new Set(all.map(id).filter((i) => !goneIds.has(i)));
}

/**
 * Region copies follow the home store (docs/promotion.md "Regions"): in each region store, a version's
 * copy goes when the home store no longer holds that version (deleted now or earlier), it is not
 * protected in the ledger (current or within rollback reach in any environment: the same
 * {@link protectedVersions} as the home store, so a protected version stays in every region), and it was
 * not copied within the in-flight window (a promotion may be copying it). The manifest goes first, as in
 * the home store. With `dryRun` the copies are only listed.
 * @returns the region copies deleted (or that would be)
 * @throws StoreAccessError
 */
export async function sweepRegionCopies(
  o: RetentionOptions,
  guarded: Map<string, KeepReason>,
  inHome: Set<string>,
  now: number,
): Promise<(VersionInfo & { region: string })[]> {
  const log = o.log ?? (() => undefined);
  const out: (VersionInfo & { region: string })[] = [];
  for (const { region, store } of o.regionStores ?? []) {
    const doomed = (await listVersions(store)).filter(
      (v) =>
        (!o.projects || o.projects.includes(v.project)) &&
        !guarded.has(`${v.project}/${v.version}`) &&
        !inHome.has(`${v.namespace}/${v.project}/${v.version}`) &&
        now - v.publishedAt.getTime() >= (o.inFlightMs ?? IN_FLIGHT_MS),
    );
    for (const v of doomed) {
      out.push({ ...v, region });
      if (o.dryRun) log(`[${v.project}] dry run: would delete the ${region} copy of version ${v.version} (${store.location.url}, ${formatBytes(v.bytes)})`);
    }
    if (o.dryRun) continue;
    await settleBounded(doomed, o.concurrency ?? 16, async (v) => {
      await deleteVersion(store, v);
      log(`[${v.project}] deleted the ${region} copy of version ${v.version} (${store.location.url}, ${formatBytes(v.bytes)})`);
    });
  }
  return out;
}

/**
 * One line when the store holds multipart uploads that never completed (publishes killed mid-upload and never
 * re-run): retention leaves them alone (a publish of the same version resumes them), S3 bills them until a
 * lifecycle rule aborts them. A store that cannot list them (no such thing, or no permission) says nothing
 * more than that: this is advice, not a reason to stop.
 */
async function reportIncompleteUploads(store: BlobStore, log: (line: string) => void): Promise<void> {
  if (!store.listIncompleteUploads) return;
  let uploads: { key: string; initiated: Date }[];
  try {
    uploads = await store.listIncompleteUploads('');
  } catch (e) {
    log(`could not list incomplete multipart uploads (${((e as Error).message ?? String(e)).split('\n')[0]}); skipped`);
    return;
  }
  if (!uploads.length) return;
  const oldest = uploads.reduce((a, u) => (u.initiated < a ? u.initiated : a), uploads[0]!.initiated);
  log(
    `${uploads.length} incomplete multipart upload(s) in ${store.location.url} (oldest started ${oldest.toISOString()}): ` +
      'publishes that stopped mid-upload; a publish of the same version resumes them, otherwise add an AbortIncompleteMultipartUpload lifecycle rule (docs/ci.md) so S3 removes them',
  );
}

/** True when the version's folder holds a publish lease newer than `sinceMs` (one listing of the folder). */
async function leasedSince(store: BlobStore, v: VersionInfo, sinceMs: number): Promise<boolean> {
  for await (const o of store.list(versionPrefix(v.project, v.version, v.namespace))) {
    const k = parseArtifactKey(o.key);
    if (k && isPublishLease(k.file) && o.lastModified.getTime() >= sinceMs) return true;
  }
  return false;
}

async function publishedByPr(store: BlobStore, v: VersionInfo, pr: number): Promise<boolean> {
  const key = v.keys.find((k) => k.endsWith(`/${STORED_MANIFEST_FILE}`));
  if (!key) return false;
  const got = await store.getBytes(key);
  if (!got) return false;
  return parseStoredManifestJson(got.bytes.toString('utf8'), store.uriOf(key)).publish.pr === String(pr);
}

const bySecond = (d: Date) => Math.floor(d.getTime() / 1000);

/**
 * Sorts a project's versions newest first. Store timestamps have 1-second resolution (S3 LastModified),
 * so where a tie straddles the `keep` boundary the manifests' own `publishedAt` (ms) decides.
 */
async function orderNewestFirst(store: BlobStore, group: VersionInfo[], keep: number): Promise<void> {
  group.sort((a, b) => b.publishedAt.getTime() - a.publishedAt.getTime());
  if (keep <= 0 || group.length <= keep) return;
  const boundary = new Set([bySecond(group[keep - 1]!.publishedAt), bySecond(group[keep]!.publishedAt)]);
  for (const v of group) {
    if (!v.complete || !boundary.has(bySecond(v.publishedAt))) continue;
    const key = v.keys.find((k) => k.endsWith(`/${STORED_MANIFEST_FILE}`))!;
    const got = await store.getBytes(key);
    if (!got) continue;
    const at = new Date(parseStoredManifestJson(got.bytes.toString('utf8'), store.uriOf(key)).publish.publishedAt);
    if (!Number.isNaN(at.getTime())) v.publishedAt = at;
  }
  group.sort((a, b) => b.publishedAt.getTime() - a.publishedAt.getTime());
}
