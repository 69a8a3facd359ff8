import { randomUUID } from 'node:crypto';
import { backoffDelay, type Backoff } from '@buildonce/retry';
import { z } from 'zod';
import { artifactKindSchema, manifestFileSchema } from '@buildonce/artifact';
import { environmentNameSchema, projectNameSchema, versionSchema } from '@buildonce/values';
import {
  MAX_SEQ,
  RELEASES_ROOT,
  currentKey,
  historyKey,
  historyPrefix,
  parseReleaseKey,
  parseSeqKey,
  projectReleasesPrefix,
  type BlobStore,
} from '@buildonce/store';
import { deployResultSchema } from '@buildonce/deploy';
import { provenanceRecordSchema } from '@buildonce/provenance';
import { LedgerError } from '@buildonce/errors';
import { analysisSchema } from './analysis-record';
import type { EnvironmentName, ProjectName } from '@buildonce/values';

/**
 * The release ledger (docs/architecture.md "Store layout"), per project and environment:
 *
 *   releases/<project>/<env>/current.json          pointer = a copy of the newest succeeded entry (CAS)
 *   releases/<project>/<env>/history/<seq>.json    one entry per deploy attempt, create-only
 *
 * Sequence numbers are 1-based and contiguous. Failed deploys get an entry but never move the
 * pointer. See {@link appendEntry} for the concurrency protocol.
 */

export const ENTRY_SCHEMA_VERSION = 1;

/** What the environment's verification recorded after a deploy (libs/verification verify.ts). */
export const verificationSchema = z
  .object({
    /** kind of the deciding check (the first that failed, else the last that ran) */
    kind: z.enum(['lambda', 'http', 'command', 'alarm', 'metric']),
    passed: z.boolean(),
    /** attempts over every check that ran */
    attempts: z.number().int().nonnegative(),
    /** wall time of every check that ran, ms */
    durationMs: z.number().int().nonnegative(),
    /** one line: what was checked and what was seen */
    detail: z.string(),
    /** alarm and metric checks: measurements over the window (absent: none configured) */
    analysis: analysisSchema.optional(),
  })
  .strict();
export type Verification = z.infer<typeof verificationSchema>;

/** The artifact a history entry deployed. */
export const entryArtifactSchema = z
  .object({
    /** immutable URI of the version's folder, e.g. `s3://bucket/prefix/artifacts/rust-scorer/123/` */
    uri: z.string(),
    namespace: z.enum(['trusted', 'preview']),
    kind: artifactKindSchema,
    /** name of the shipped file (zip / tarball) */
    file: z.string(),
    /** sha256 hex of the shipped file */
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    files: z.array(manifestFileSchema),
    /** commit the artifact was published from (stored manifest's publish metadata) */
    publishedCommit: z.string().optional(),
    /** signed provenance: whether the version had one and what the environment verified (absent in entries written before provenance was recorded) */
    provenance: provenanceRecordSchema.optional(),
    /** oci-image only: the image URI by digest (`<registry>/<repo>@sha256:…`) the environment runs */
    imageUri: z.string().optional(),
  })
  .strict();

/** What a deploy did, as a history entry records it for the environment and for each of its regions. */
const deployOutcome = {
  /** what the deploy target did (null when it failed before producing a result) */
  deploy: deployResultSchema.nullable(),
  /** the environment's checks after the deploy (absent: none configured, or an entry written before verification existed) */
  verification: verificationSchema.optional(),
  /** one-line failure reason (entry status failed; region statuses failed and not-restored) */
  error: z.string().optional(),
};

/** What one region of a multi-region environment did in a promotion or rollback (docs/promotion.md "Regions"). */
export const regionResultSchema = z
  .object({
    /**
     * `succeeded`: runs the version, verified; `failed`: its deploy or verification failed (with `deploy`
     * set it may run the version); `restored`: was moved, then restored to the previous version;
     * `not-restored`: was moved and its restore failed (runs the version)
     */
    status: z.enum(['succeeded', 'failed', 'restored', 'not-restored']),
    /** the region's store URL, whose bucket the region's code is read from */
    store: z.string(),
    /** the region copy: `present` (replica verified), `copied` (copied server-side and verified), `home` (the home store itself) */
    copy: z.enum(['present', 'copied', 'home']),
    /**
     * oci-image only: the image URI by digest the region deploys (its registry's copy) and how it got there:
     * `published` (the registry the image was published to), `present` (the region's registry already served
     * the digest), `copied` (copied by digest and read back)
     */
    image: z
      .object({ uri: z.string(), copy: z.enum(['published', 'present', 'copied']) })
      .strict()
      .optional(),
    ...deployOutcome,
    /** what the region's restore did (status `restored`) */
    restore: deployResultSchema.optional(),
  })
  .strict();
export type RegionResult = z.infer<typeof regionResultSchema>;

/** One history entry (`history/<seq>.json`); `current.json` holds a copy of the newest succeeded one. */
export const historyEntrySchema = z
  .object({
    schemaVersion: z.literal(ENTRY_SCHEMA_VERSION),
    seq: z.number().int().min(1).max(MAX_SEQ),
    project: projectNameSchema,
    environment: environmentNameSchema,
    version: versionSchema,
    status: z.enum(['succeeded', 'failed']),
    /** true for `rollback` commands */
    rollback: z.boolean(),
    /** version current in the environment when this entry was appended (null: first release) */
    previousVersion: versionSchema.nullable(),
    artifact: entryArtifactSchema,
    ...deployOutcome,
    /** why it was done: a person's `--reason` on promote/rollback, or for an automatic rollback the failed verification */
    reason: z.string().optional(),
    /** true for the rollback a failed verification triggered by itself (not a person's `rollback`) */
    automatic: z.boolean().optional(),
    /** environments with regions: each region's result, by AWS Region name (absent: one region) */
    regions: z.record(z.string(), regionResultSchema).optional(),
    /** a release that runs in some regions only (`regionFailure: hold`); always `failed`, never satisfies a downstream `requires` */
    partial: z.boolean().optional(),
    /**
     * Source commit the running version corresponds to: the commit a promotion ran at (its sources
     * hash to this version), or for a rollback the commit of the restored entry. CI uses it as
     * `nx affected --base`.
     */
    commit: z.string().nullable(),
    runId: z.string().nullable(),
    actor: z.string(),
    /** ISO 8601 */
    startedAt: z.string(),
    /** ISO 8601 */
    finishedAt: z.string(),
    /**
     * Random id of the append that wrote this entry: a writer whose create-only write was applied but
     * whose response was lost recognises its own entry by it on retry (docs/architecture.md, invariant 8).
     */
    writeId: z.string().optional(),
  })
  .strict();
export type HistoryEntry = z.infer<typeof historyEntrySchema>;

/** How the `error` of an entry begins when it records a promotion whose holder stopped before recording. */
export const INTERRUPTED_ERROR_PREFIX = 'interrupted: ';

/** True for an entry recording a promotion whose holder stopped before recording (its deploy may be partly applied). */
export function isInterrupted(e: HistoryEntry): boolean {
  return e.status === 'failed' && !!e.error?.startsWith(INTERRUPTED_ERROR_PREFIX);
}

/**
 * True when the entry's attempt changed (or may have changed) what the target runs: it has a `deploy`
 * result (succeeded, or failed verification held or not restored), or it records an interrupted promotion,
 * whose deploy may be partly applied, so what runs is unknown until the next deploy.
 */
export function changedTarget(e: HistoryEntry): boolean {
  return !!e.deploy || isInterrupted(e);
}
/** An entry before the ledger assigns `seq` and `previousVersion`. */
export type EntryDraft = Omit<HistoryEntry, 'seq' | 'previousVersion' | 'schemaVersion' | 'writeId'>;

/** Canonical JSON of an entry (2-space indent, trailing newline). */
export function serializeEntry(e: HistoryEntry): Buffer {
  return Buffer.from(JSON.stringify(e, null, 2) + '\n');
}

/** @throws LedgerError naming the object and the first bad field */
export function parseEntry(bytes: Buffer | string, source: string): HistoryEntry {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString());
  } catch (e) {
    throw new LedgerError(`${source}: not JSON (${(e as Error).message})`);
  }
  const r = historyEntrySchema.safeParse(value);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new LedgerError(`${source}: ${i?.path.join('.') || '(root)'}: ${i?.message ?? 'invalid'}`);
  }
  return r.data;
}

/** The pointer with the ETag to compare-and-swap against. */
export interface CurrentPointer {
  entry: HistoryEntry;
  etag: string;
}

/** GetObject `current.json`; undefined when the environment never had a successful release. @throws LedgerError, StoreAccessError */
export async function readCurrent(store: BlobStore, project: ProjectName, env: EnvironmentName): Promise<CurrentPointer | undefined> {
  const key = currentKey(project, env);
  const got = await store.getBytes(key);
  return got ? { entry: parseEntry(got.bytes, store.uriOf(key)), etag: got.etag } : undefined;
}

/** GetObject one history entry; undefined when that seq is free. */
export async function readEntry(store: BlobStore, project: ProjectName, env: EnvironmentName, seq: number): Promise<HistoryEntry | undefined> {
  const key = historyKey(project, env, seq);
  const got = await store.getBytes(key);
  return got ? parseEntry(got.bytes, store.uriOf(key)) : undefined;
}

/** Every seq present in an environment's history (ListObjectsV2 over `history/`), ascending. */
export async function listSeqs(store: BlobStore, project: ProjectName, env: EnvironmentName): Promise<number[]> {
  const seqs: number[] = [];
  for await (const o of store.list(historyPrefix(project, env))) {
    const s = parseSeqKey(o.key);
    if (s !== undefined) seqs.push(s);
  }
  return seqs.sort((a, b) => a - b);
}

/**
 * Reads history entries, oldest first.
 * @param opts.limit only the newest `limit` entries (fetched newest-first, returned oldest-first)
 */
export async function readHistory(store: BlobStore, project: ProjectName, env: EnvironmentName, opts: { limit?: number } = {}): Promise<HistoryEntry[]> {
  const seqs = await listSeqs(store, project, env);
  const pick = opts.limit !== undefined ? seqs.slice(Math.max(0, seqs.length - opts.limit)) : seqs;
  const out = await Promise.all(pick.map((s) => readEntry(store, project, env, s)));
  return out.filter((e): e is HistoryEntry => !!e);
}

/**
 * Scans an environment's history newest-first and returns the first entry matching `pred`
 * (stops early: GETs only as many entries as needed).
 */
export async function findEntry(
  store: BlobStore,
  project: ProjectName,
  env: EnvironmentName,
  pred: (e: HistoryEntry) => boolean,
): Promise<HistoryEntry | undefined> {
  const seqs = await listSeqs(store, project, env);
  for (let i = seqs.length - 1; i >= 0; i--) {
    const e = await readEntry(store, project, env, seqs[i]!);
    if (e && pred(e)) return e;
  }
  return undefined;
}

/** Environments that have a ledger for a project (from `releases/<project>/<env>/…` keys), sorted. */
export async function listEnvironments(store: BlobStore, project: ProjectName): Promise<EnvironmentName[]> {
  const envs = new Set<EnvironmentName>();
  for await (const o of store.list(projectReleasesPrefix(project))) {
    const k = parseReleaseKey(o.key);
    if (k) envs.add(k.env);
  }
  return [...envs].sort();
}

/** Projects that have any ledger in the store (from `releases/<project>/…` keys), sorted. */
export async function listLedgerProjects(store: BlobStore): Promise<ProjectName[]> {
  const projects = new Set<ProjectName>();
  for await (const o of store.list(RELEASES_ROOT)) {
    const k = parseReleaseKey(o.key);
    if (k) projects.add(k.project);
  }
  return [...projects].sort();
}

/** What {@link appendEntry} did. */
export interface AppendResult {
  entry: HistoryEntry;
  /** pointers this writer advanced on behalf of writers that stopped between their history write and their pointer CAS */
  repaired: number[];
  /** lost races (history seq taken or pointer moved) that were retried */
  retries: number;
}

export interface AppendOptions {
  /** max rounds of re-reading after lost races (default 200) */
  maxRounds?: number;
  /** called between lost races (tests); default: small random backoff */
  backoff?: (round: number) => Promise<void>;
}

/** Between lost races: 5 ms doubling up to 100 ms, a random part of it (concurrent writers fall out of step). */
const LOST_RACE: Backoff = { minTimeout: 5, factor: 2, maxTimeout: 100, jitter: 'full' };
const defaultBackoff = (round: number) => new Promise<void>((r) => setTimeout(r, backoffDelay(round, LOST_RACE)));

/**
 * Appends one entry to an environment's history and, for a succeeded entry, moves `current.json`
 * to it. Lock-free and safe for any number of concurrent writers on S3 or the file store:
 *
 * 1. read `current.json` with its ETag (the pointer = newest succeeded entry, seq c);
 * 2. walk `history/<c+1>, <c+2>, …` until a free seq. A *succeeded* entry found there belongs to a
 *    writer that stopped (or is about to CAS) between steps 3 and 4: this writer first advances the
 *    pointer to it by CAS (repair), so the pointer passes through every succeeded entry in order;
 *    failed entries are skipped (they never move the pointer);
 * 3. write `history/<seq>.json` create-only (S3 `If-None-Match: *`, file: link). Taken → back to 1;
 * 4. succeeded entries: CAS `current.json` (S3 `If-Match: <ETag>`, `If-None-Match: *` when absent).
 *    On a lost CAS re-read: if the pointer is already at or past this seq (another writer repaired it
 *    and maybe appended after it) the append is complete, else retry the CAS with the new ETag.
 *
 * Every entry carries a random `writeId`. A history write whose response was lost (the SDK retries
 * and gets 412 on its own object) or an entry of this call found while walking is recognised as this
 * append's own, so one deploy is never recorded twice (docs/architecture.md, invariant 8).
 *
 * Sequence numbers come out contiguous, no entry is lost or overwritten, and the pointer only moves
 * forward and always equals the newest succeeded entry once every writer has finished (or the next
 * writer has run after a crash). `previousVersion` is the pointer's version at write time.
 * @returns the entry as stored (seq, previousVersion filled in)
 * @throws LedgerError after `maxRounds` lost races or for corrupt ledger objects; StoreAccessError
 */
export async function appendEntry(store: BlobStore, draft: EntryDraft, opts: AppendOptions = {}): Promise<AppendResult> {
  const { project, environment: env } = draft;
  const maxRounds = opts.maxRounds ?? 200;
  const backoff = opts.backoff ?? defaultBackoff;
  const repaired: number[] = [];
  const ptrKey = currentKey(project, env);
  const writeId = randomUUID();
  round: for (let round = 0; round < maxRounds; round++) {
    if (round > 0) await backoff(round);
    let cur = await readCurrent(store, project, env);
    let seq = (cur?.entry.seq ?? 0) + 1;
    let mine: HistoryEntry | undefined;
    for (;;) {
      const existing = await readEntry(store, project, env, seq);
      if (!existing) break;
      if (existing.seq !== seq) throw new LedgerError(`${store.uriOf(historyKey(project, env, seq))} says seq ${existing.seq}: the ledger is corrupt`);
      if (existing.writeId === writeId) {
        mine = existing; // our own earlier attempt landed (its response was lost)
        break;
      }
      if (existing.status === 'succeeded') {
        const r = await store.putBytesIfMatch(ptrKey, serializeEntry(existing), cur?.etag ?? null);
        if (r.status !== 'written') continue round;
        repaired.push(seq);
        cur = { entry: existing, etag: r.etag };
      }
      seq++;
    }
    let entry: HistoryEntry = mine ?? { schemaVersion: ENTRY_SCHEMA_VERSION, seq, previousVersion: cur?.entry.version ?? null, ...draft, writeId };
    if (!mine && (await store.putBytesIfAbsent(historyKey(project, env, seq), serializeEntry(entry), { contentType: 'application/json' })) === 'exists') {
      const there = await readEntry(store, project, env, seq);
      if (there?.writeId !== writeId) continue; // another writer took this seq
      entry = there; // 412 on our own write: the first attempt was applied, its response lost
    }
    const bytes = serializeEntry(entry);
    if (entry.status === 'failed') return { entry, repaired, retries: round };
    let etag = cur?.etag ?? null;
    for (let cas = 0; cas < maxRounds; cas++) {
      const r = await store.putBytesIfMatch(ptrKey, bytes, etag);
      if (r.status === 'written') return { entry, repaired, retries: round };
      const now = await readCurrent(store, project, env);
      if (now && now.entry.seq >= seq) return { entry, repaired, retries: round };
      etag = now?.etag ?? null;
      await backoff(cas + 1);
    }
    throw new LedgerError(`could not move ${store.uriOf(ptrKey)} to seq ${seq} after ${maxRounds} attempts (entry is in the history)`);
  }
  throw new LedgerError(`could not append to ${store.uriOf(historyPrefix(project, env))} after ${maxRounds} lost races: too many concurrent promotions`);
}
