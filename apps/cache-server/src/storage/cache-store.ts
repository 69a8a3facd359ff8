import { createHash, randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { BodyGuard } from '../body-guard';
import { BodyIncompleteError, BodyRejectedError, BodyTooLargeError } from '../errors';
import { TRUSTED } from '../tokens';
import { type BlobIdentity, type CacheBackend, type VerifiedRead } from './backend';
import type { SharedLru } from './shared-lru';
import { CorruptBlobError } from './verify';
import { StoreAccessError } from '@buildonce/store';

/** Nx remote-cache hash syntax accepted by the server: 1–128 of `[0-9a-zA-Z_-]`. */
export const HASH_PATTERN = /^[0-9a-zA-Z_-]{1,128}$/;

/** Whether `hash` is a valid cache key (HASH_PATTERN). */
export function isValidHash(hash: string): boolean {
  return HASH_PATTERN.test(hash);
}

/** Storage layout version; bumping it starts an empty cache next to the old one. */
const LAYOUT = 'v1';

/** Folder of a namespace: `v1/trusted` or `v1/untrusted/<ns>`; untrusted names can never collide with trusted. */
function nsDir(namespace: string): string {
  return namespace === TRUSTED ? `${LAYOUT}/trusted` : `${LAYOUT}/untrusted/${namespace}`;
}

/** Key of the record that makes an entry visible: `v1/<ns>/records/<hash>.json`. */
export function recordKey(namespace: string, hash: string): string {
  return `${nsDir(namespace)}/records/${hash}.json`;
}

/**
 * Key of one upload's bytes: `v1/<ns>/blobs/<hash>.<uuid>.tar.gz` (unique per PUT attempt; hashes have no `.`).
 * One folder per namespace, so a PUT creates one file and no directory. Records name their blob, so entries
 * stored under the earlier `blobs/<hash>/<uuid>.tar.gz` keys stay readable (no layout bump).
 */
export function blobKey(namespace: string, hash: string, id: string = randomUUID()): string {
  return `${nsDir(namespace)}/blobs/${hash}.${id}.tar.gz`;
}

/** The JSON record written create-only once an entry's bytes are stored and validated. */
export interface EntryRecord {
  schemaVersion: 1;
  hash: string;
  namespace: string;
  /** bytes */
  size: number;
  /** hex sha256 of the body */
  sha256: string;
  /** key of the blob holding the body */
  blob: string;
  /** ISO-8601 */
  storedAt: string;
  /**
   * the blob as written (absent in records stored before identities existed: those are re-hashed on GET). A GET
   * that finds this identity streams without re-hashing; any other identity is a corrupt entry.
   */
  identity?: BlobIdentity;
}

function isIdentity(v: unknown): v is BlobIdentity {
  const i = v as Record<string, unknown>;
  if (!i || typeof i !== 'object') return false;
  if (i.kind === 'file') return typeof i.dev === 'string' && typeof i.ino === 'string' && typeof i.mtimeNs === 'string' && typeof i.size === 'number';
  if (i.kind === 's3') return typeof i.etag === 'string' && (i.versionId === undefined || typeof i.versionId === 'string');
  return false;
}

/** The record in `bytes`, or undefined when it is not a valid entry record (then treated as corrupt). */
export function parseRecord(bytes: Buffer): EntryRecord | undefined {
  try {
    const r = JSON.parse(bytes.toString('utf8')) as Partial<EntryRecord>;
    if (
      r.schemaVersion === 1 &&
      typeof r.hash === 'string' &&
      typeof r.namespace === 'string' &&
      typeof r.blob === 'string' &&
      typeof r.sha256 === 'string' &&
      /^[0-9a-f]{64}$/.test(r.sha256) &&
      typeof r.size === 'number' &&
      Number.isSafeInteger(r.size) &&
      r.size >= 0 &&
      (r.identity === undefined || isIdentity(r.identity))
    ) {
      return r as EntryRecord;
    }
  } catch {
    /* fallthrough */
  }
  return undefined;
}

/** Outcome of a PUT (discriminated on `status`). */
export type PutOutcome =
  | { status: 'stored'; size: number; sha256: string }
  /** a record already exists in the namespace: nothing was written (never overwrite) */
  | { status: 'exists'; receivedBytes: number }
  | { status: 'too-large'; limitBytes: number; receivedBytes: number }
  | { status: 'rejected'; kind: BodyRejectedError['kind']; reason: string; receivedBytes: number }
  /** the client sent fewer bytes than its Content-Length or disconnected */
  | { status: 'incomplete'; receivedBytes: number };

/** Outcome of a GET (discriminated on `status`). */
export type GetOutcome =
  | { status: 'hit'; namespace: string; size: number; sha256: string; stream: Readable }
  /** `corrupt` lists entries that existed but failed verification (logged, quarantined, treated as absent) */
  | { status: 'miss'; corrupt: { namespace: string; reason: string }[] };

export interface CacheStoreOptions {
  /** largest accepted body, bytes */
  maxBytes: number;
  /**
   * Cap on the bytes of stored entries (BUILDONCE_CACHE_MAX_STORE_BYTES); needs a backend that can list its
   * records (the directory store). Least-recently-used entries are evicted to stay under it.
   */
  maxStoreBytes?: number;
  /** LRU cap shared by replicas on one S3 bucket (instead of maxStoreBytes): told about every hit */
  shared?: SharedLru;
  /** called for every corrupt entry found (the server logs it) */
  onCorrupt?: (info: { namespace: string; hash: string; reason: string }) => void;
  /** called for every entry evicted to honour maxStoreBytes */
  onEvict?: (info: { namespace: string; hash: string; size: number }) => void;
}

/** One stored entry as the LRU index knows it. */
interface Indexed {
  namespace: string;
  hash: string;
  /** blob bytes */
  size: number;
  blob: string;
  /** the record's exact bytes (evictions delete the record only while it is still this one) */
  recordBytes: Buffer;
  /** GETs streaming this entry right now: never evicted while > 0 */
  readers: number;
}

/**
 * The cache's semantics on top of a backend, identical for directory and S3 storage:
 * - an entry is visible only through its record, written create-only after its blob is fully stored and
 *   validated (invariant 1: written at most once, never seen partially);
 * - concurrent PUTs of one hash both stream, exactly one record write wins, the loser deletes its blob (409);
 * - a GET re-verifies size and sha256 (before sending, or while sending large directory entries, holding the
 *   last chunk back); a mismatch is a miss (or a cut-short response), and the bad record is moved to
 *   `quarantine/` so a trusted builder can store the entry again.
 */
export class CacheStore {
  /** LRU index (only with maxStoreBytes): record key -> entry, least recently used first (Map order). */
  private readonly lru?: Map<string, Indexed>;
  private indexedBytes = 0;
  /** bytes announced by PUTs in progress (Content-Length), so concurrent uploads do not overshoot the cap */
  private reservedBytes = 0;

  constructor(
    readonly backend: CacheBackend,
    private readonly opts: CacheStoreOptions,
  ) {
    if (opts.maxStoreBytes !== undefined) {
      if (!backend.listRecords) throw new StoreAccessError(`${backend.url} cannot list its entries: BUILDONCE_CACHE_MAX_STORE_BYTES needs a directory store`);
      this.lru = new Map();
    }
  }

  /** Bytes of the entries in the LRU index (undefined without maxStoreBytes). */
  get storeBytes(): number | undefined {
    return this.lru ? this.indexedBytes : undefined;
  }

  /**
   * Builds the LRU index from the stored records (oldest modification first), then evicts down to the cap.
   * A no-op without maxStoreBytes. @throws StoreAccessError
   */
  async init(): Promise<void> {
    if (!this.lru || !this.backend.listRecords) return;
    const found: { key: string; mtimeMs: number; bytes: Buffer }[] = [];
    for await (const r of this.backend.listRecords(`${LAYOUT}/`)) found.push(r);
    found.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const r of found) {
      const rec = parseRecord(r.bytes);
      if (!rec || recordKey(rec.namespace, rec.hash) !== r.key) continue;
      this.index(r.key, rec, r.bytes);
    }
    await this.evict(0);
  }

  private index(rk: string, rec: EntryRecord, recordBytes: Buffer): void {
    if (!this.lru || this.lru.has(rk)) return;
    this.lru.set(rk, { namespace: rec.namespace, hash: rec.hash, size: rec.size, blob: rec.blob, recordBytes, readers: 0 });
    this.indexedBytes += rec.size;
  }

  private unindex(rk: string): Indexed | undefined {
    const e = this.lru?.get(rk);
    if (!e) return undefined;
    this.lru!.delete(rk);
    this.indexedBytes -= e.size;
    return e;
  }

  /**
   * Evicts least-recently-used entries that no GET is streaming until the indexed bytes, the bytes reserved by
   * uploads in progress and `incoming` fit under the cap. Each eviction deletes the record first (only while it
   * is still the indexed one), then the blob.
   */
  private async evict(incoming: number): Promise<void> {
    if (!this.lru || this.opts.maxStoreBytes === undefined) return;
    const cap = this.opts.maxStoreBytes;
    const victims: [string, Indexed][] = [];
    for (const [rk, e] of this.lru) {
      if (this.indexedBytes + this.reservedBytes + incoming <= cap) break;
      if (e.readers > 0) continue;
      this.unindex(rk);
      victims.push([rk, e]);
    }
    for (const [rk, e] of victims) {
      await this.backend.deleteRecordIfSame(rk, e.recordBytes).catch(() => undefined);
      await this.backend.delete(e.blob).catch(() => undefined);
      this.opts.onEvict?.({ namespace: e.namespace, hash: e.hash, size: e.size });
    }
  }

  /** Whether `namespace` already has an entry for `hash`. @throws StoreAccessError */
  exists(namespace: string, hash: string): Promise<boolean> {
    return this.backend.hasRecord(recordKey(namespace, hash));
  }

  /**
   * Stores a PUT body for `hash` in `namespace`, streaming it through BodyGuard into a fresh blob, then
   * writing the record create-only.
   * @param declaredBytes the request's Content-Length
   * @throws StoreAccessError when the backend fails (the partial blob is deleted best-effort)
   */
  async put(namespace: string, hash: string, body: Readable, declaredBytes: number): Promise<PutOutcome> {
    if (declaredBytes > this.opts.maxBytes) return { status: 'too-large', limitBytes: this.opts.maxBytes, receivedBytes: 0 };
    const cap = this.opts.maxStoreBytes ?? this.opts.shared?.capBytes;
    if (cap !== undefined && declaredBytes > cap) return { status: 'too-large', limitBytes: cap, receivedBytes: 0 };
    if (await this.exists(namespace, hash)) return { status: 'exists', receivedBytes: 0 };
    if (!this.lru) return this.store(namespace, hash, body, declaredBytes);
    await this.evict(declaredBytes);
    this.reservedBytes += declaredBytes;
    try {
      const out = await this.store(namespace, hash, body, declaredBytes);
      if (out.status === 'stored') this.index(recordKey(namespace, hash), out.record, out.recordBytes);
      return out;
    } finally {
      this.reservedBytes -= declaredBytes;
    }
  }

  private async store(
    namespace: string,
    hash: string,
    body: Readable,
    declaredBytes: number,
  ): Promise<Exclude<PutOutcome, { status: 'stored' }> | (Extract<PutOutcome, { status: 'stored' }> & { record: EntryRecord; recordBytes: Buffer })> {
    const key = blobKey(namespace, hash);
    const guard = new BodyGuard({ maxBytes: this.opts.maxBytes, expectedBytes: declaredBytes });
    // The outcome is read from guard.failure; consumers see the error through their own listeners. This one keeps
    // a late 'error' (after a consumer detached) from becoming an uncaught exception.
    guard.on('error', () => undefined);
    let received = 0;
    const countFrom = (c: Buffer) => (received += c.length);
    body.on('data', countFrom);
    const onAbort = () => {
      if (!body.readableEnded) guard.destroy(new BodyIncompleteError(declaredBytes, received));
    };
    const onBodyError = () => guard.destroy(new BodyIncompleteError(declaredBytes, received));
    body.once('close', onAbort);
    body.once('error', onBodyError);
    body.pipe(guard);
    // the client may have gone while the existence check ran: its 'close' was before these listeners
    if (body.destroyed) onAbort();
    try {
      const identity = await this.backend.writeBlob(key, guard, declaredBytes);
      if (guard.failure) throw guard.failure;
      const result = guard.result();
      const record: EntryRecord = {
        schemaVersion: 1,
        hash,
        namespace,
        size: result.size,
        sha256: result.sha256,
        blob: key,
        storedAt: new Date().toISOString(),
        identity,
      };
      const recordBytes = Buffer.from(JSON.stringify(record) + '\n');
      const put = await this.backend.putRecordIfAbsent(recordKey(namespace, hash), recordBytes);
      if (put === 'exists') {
        // A create-only write whose response was lost is retried (SDK retries, 412 on the retry): the record
        // there may be our own. Its blob key is unique to this attempt, so it doubles as a write id.
        const there = await this.backend.getRecord(recordKey(namespace, hash));
        const theirs = there ? parseRecord(there) : undefined;
        if (there && theirs && theirs.blob === key && theirs.sha256 === result.sha256 && theirs.size === result.size) {
          return { status: 'stored', size: result.size, sha256: result.sha256, record: theirs, recordBytes: there };
        }
        await this.backend.delete(key).catch(() => undefined);
        return { status: 'exists', receivedBytes: received };
      }
      return { status: 'stored', size: result.size, sha256: result.sha256, record, recordBytes };
    } catch (e) {
      body.unpipe(guard);
      if (!guard.destroyed) guard.destroy();
      await this.backend.delete(key).catch(() => undefined);
      const f = guard.failure ?? e;
      if (f instanceof BodyTooLargeError) return { status: 'too-large', limitBytes: f.limitBytes, receivedBytes: received };
      if (f instanceof BodyRejectedError) return { status: 'rejected', kind: f.kind, reason: f.reason, receivedBytes: received };
      if (f instanceof BodyIncompleteError) return { status: 'incomplete', receivedBytes: received };
      if (e instanceof StoreAccessError) throw e;
      throw new StoreAccessError(`storing ${hash} in ${this.backend.url} failed: ${(e as Error).message}`);
    } finally {
      body.off('data', countFrom);
      body.off('close', onAbort);
      body.off('error', onBodyError);
    }
  }

  /**
   * Looks `hash` up in `namespaces`, in order, and returns the first entry whose bytes verify.
   * @throws StoreAccessError when the backend fails
   */
  async get(namespaces: readonly string[], hash: string): Promise<GetOutcome> {
    const corrupt: { namespace: string; reason: string }[] = [];
    for (const namespace of namespaces) {
      const rk = recordKey(namespace, hash);
      const bytes = await this.backend.getRecord(rk);
      if (!bytes) continue;
      const record = parseRecord(bytes);
      let reason: string;
      if (!record) {
        reason = `record ${rk} is not a valid entry record`;
      } else if (record.hash !== hash || record.namespace !== namespace) {
        reason = `record ${rk} names ${record.namespace}/${record.hash}`;
      } else {
        // a read refreshes recency and pins the entry until its stream closes (never evicted mid-GET)
        const entry = this.touch(rk);
        if (entry) entry.readers++;
        let read: VerifiedRead;
        try {
          read = await this.backend.readVerified(record.blob, { size: record.size, sha256: record.sha256, identity: record.identity });
        } catch (e) {
          if (entry) entry.readers--;
          throw e;
        }
        if (read.status === 'ok') {
          if (entry) read.stream.once('close', () => entry.readers--);
          if (this.opts.shared) read.stream.once('close', this.opts.shared.begin(rk));
          if (read.verifiedWhileStreaming) {
            // a mismatch found at the end of the stream: the response is cut short, and the entry quarantined
            read.stream.once('error', (e) => {
              if (!(e instanceof CorruptBlobError)) return;
              this.opts.onCorrupt?.({ namespace, hash, reason: e.message });
              this.unindex(rk);
              void this.quarantine(rk, bytes);
            });
          }
          return { status: 'hit', namespace, size: read.size, sha256: record.sha256, stream: read.stream };
        }
        if (entry) entry.readers--;
        // evicted between reading the record and opening the blob (another replica's evictor): a plain miss
        if (read.status === 'missing' && !(await this.backend.getRecord(rk))?.equals(bytes)) continue;
        reason = read.status === 'missing' ? `blob ${record.blob} is missing` : read.reason;
      }
      this.unindex(rk);
      corrupt.push({ namespace, reason });
      this.opts.onCorrupt?.({ namespace, hash, reason });
      await this.quarantine(rk, bytes);
    }
    return { status: 'miss', corrupt };
  }

  /**
   * Every record in the store (key and exact bytes), for the scrubber: a directory walk or an S3 listing.
   * @throws StoreAccessError
   */
  async *records(): AsyncIterable<{ key: string; bytes: Buffer }> {
    if (!this.backend.listRecords) return;
    for await (const r of this.backend.listRecords(`${LAYOUT}/`)) yield { key: r.key, bytes: r.bytes };
  }

  /**
   * Re-hashes one stored entry's blob at rest (the scrubber's unit of work): a blob that is missing, has another
   * size or another sha256 than its record, or a record that is not valid, is quarantined exactly as a failed GET
   * does (`onCorrupt`, record moved to `quarantine/` only while it is still the one judged).
   * @param pace awaited after each chunk with its length in bytes (rate limiting)
   * @returns `ok`, `corrupt` (quarantined), or `gone` (the record changed or went away meanwhile: not judged);
   *   `bytes` read
   * @throws StoreAccessError
   */
  async scrub(rk: string, recordBytes: Buffer, pace: (bytes: number) => Promise<void>): Promise<{ result: 'ok' | 'corrupt' | 'gone'; bytes: number }> {
    const record = parseRecord(recordBytes);
    let reason: string | undefined;
    let bytes = 0;
    if (!record || recordKey(record.namespace, record.hash) !== rk) {
      reason = `record ${rk} is not a valid entry record`;
    } else {
      const src = await this.backend.readRaw(record.blob);
      if (!src) {
        reason = `blob ${record.blob} is missing`;
      } else {
        const h = createHash('sha256');
        try {
          for await (const c of src) {
            const b = c as Buffer;
            bytes += b.length;
            h.update(b);
            await pace(b.length);
          }
        } catch (e) {
          src.destroy();
          throw new StoreAccessError(`scrub: reading ${record.blob} failed: ${(e as Error).message}`);
        }
        const sha = h.digest('hex');
        if (bytes !== record.size) reason = `blob ${record.blob} has ${bytes} bytes at rest, record says ${record.size}`;
        else if (sha !== record.sha256) reason = `blob ${record.blob} has sha256 ${sha} at rest, record says ${record.sha256}`;
      }
    }
    if (!reason) return { result: 'ok', bytes };
    // judged against this record: if it was replaced or evicted while the blob was read, the verdict is moot
    const now = await this.backend.getRecord(rk);
    if (!now || !now.equals(recordBytes)) return { result: 'gone', bytes };
    const namespace = record?.namespace ?? '?';
    this.unindex(rk);
    this.opts.onCorrupt?.({ namespace, hash: record?.hash ?? rk, reason: `scrub: ${reason}` });
    await this.quarantine(rk, recordBytes);
    return { result: 'corrupt', bytes };
  }

  /** Marks an indexed entry most recently used; returns it (undefined when not indexed). */
  private touch(rk: string): Indexed | undefined {
    const e = this.lru?.get(rk);
    if (!e) return undefined;
    this.lru!.delete(rk);
    this.lru!.set(rk, e);
    return e;
  }

  /**
   * Moves a bad record aside (`v1/<ns>/quarantine/<hash>.<time>.json`) so the key can be stored again. The
   * delete is conditional on the record still being the bad one: a concurrent GET may have quarantined it
   * already and a trusted builder stored a good entry since; that entry must survive this late quarantine.
   */
  private async quarantine(rk: string, bytes: Buffer): Promise<void> {
    const q = rk.replace('/records/', '/quarantine/').replace(/\.json$/, `.${Date.now()}-${randomUUID().slice(0, 8)}.json`);
    await this.backend.putRecordIfAbsent(q, bytes).catch(() => undefined);
    await this.backend.deleteRecordIfSame(rk, bytes).catch(() => undefined);
  }
}
