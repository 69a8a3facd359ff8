import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { BodyGuard } from '../body-guard';
import { BodyIncompleteError, BodyRejectedError, BodyTooLargeError } from '../errors';
import { TRUSTED } from '../tokens';
import { StorageError, type CacheBackend } from './backend';

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

/** Key of one upload's bytes: `v1/<ns>/blobs/<hash>/<uuid>.tar.gz` (unique per PUT attempt). */
export function blobKey(namespace: string, hash: string, id: string = randomUUID()): string {
  return `${nsDir(namespace)}/blobs/${hash}/${id}.tar.gz`;
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
}

function parseRecord(bytes: Buffer): EntryRecord | undefined {
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
      r.size >= 0
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
  /** called for every corrupt entry found (the server logs it) */
  onCorrupt?: (info: { namespace: string; hash: string; reason: string }) => void;
}

/**
 * The cache's semantics on top of a backend, identical for directory and S3 storage:
 * - an entry is visible only through its record, written create-only after its blob is fully stored and
 *   validated (invariant 1: written at most once, never seen partially);
 * - concurrent PUTs of one hash both stream, exactly one record write wins, the loser deletes its blob (409);
 * - a GET re-verifies size and sha256 before sending; a mismatch is a miss, and the bad record is moved to
 *   `quarantine/` so a trusted builder can store the entry again.
 */
export class CacheStore {
  constructor(
    readonly backend: CacheBackend,
    private readonly opts: CacheStoreOptions,
  ) {}

  /** Whether `namespace` already has an entry for `hash`. @throws StorageError */
  exists(namespace: string, hash: string): Promise<boolean> {
    return this.backend.hasRecord(recordKey(namespace, hash));
  }

  /**
   * Stores a PUT body for `hash` in `namespace`, streaming it through BodyGuard into a fresh blob, then
   * writing the record create-only.
   * @param declaredBytes the request's Content-Length
   * @throws StorageError when the backend fails (the partial blob is deleted best-effort)
   */
  async put(namespace: string, hash: string, body: Readable, declaredBytes: number): Promise<PutOutcome> {
    if (declaredBytes > this.opts.maxBytes) return { status: 'too-large', limitBytes: this.opts.maxBytes, receivedBytes: 0 };
    if (await this.exists(namespace, hash)) return { status: 'exists', receivedBytes: 0 };

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
    try {
      await this.backend.writeBlob(key, guard);
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
      };
      const put = await this.backend.putRecordIfAbsent(recordKey(namespace, hash), Buffer.from(JSON.stringify(record) + '\n'));
      if (put === 'exists') {
        await this.backend.delete(key).catch(() => undefined);
        return { status: 'exists', receivedBytes: received };
      }
      return { status: 'stored', size: result.size, sha256: result.sha256 };
    } catch (e) {
      body.unpipe(guard);
      if (!guard.destroyed) guard.destroy();
      await this.backend.delete(key).catch(() => undefined);
      const f = guard.failure ?? e;
      if (f instanceof BodyTooLargeError) return { status: 'too-large', limitBytes: f.limitBytes, receivedBytes: received };
      if (f instanceof BodyRejectedError) return { status: 'rejected', kind: f.kind, reason: f.reason, receivedBytes: received };
      if (f instanceof BodyIncompleteError) return { status: 'incomplete', receivedBytes: received };
      if (e instanceof StorageError) throw e;
      throw new StorageError(`storing ${hash} in ${this.backend.url} failed: ${(e as Error).message}`);
    } finally {
      body.off('data', countFrom);
      body.off('close', onAbort);
      body.off('error', onBodyError);
    }
  }

  /**
   * Looks `hash` up in `namespaces`, in order, and returns the first entry whose bytes verify.
   * @throws StorageError when the backend fails
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
        const read = await this.backend.readVerified(record.blob, { size: record.size, sha256: record.sha256 });
        if (read.status === 'ok') return { status: 'hit', namespace, size: read.size, sha256: record.sha256, stream: read.stream };
        reason = read.status === 'missing' ? `blob ${record.blob} is missing` : read.reason;
      }
      corrupt.push({ namespace, reason });
      this.opts.onCorrupt?.({ namespace, hash, reason });
      await this.quarantine(rk, bytes);
    }
    return { status: 'miss', corrupt };
  }

  /** Moves a bad record aside (`v1/<ns>/quarantine/<hash>.<time>.json`) so the key can be stored again. */
  private async quarantine(rk: string, bytes: Buffer): Promise<void> {
    const q = rk.replace('/records/', '/quarantine/').replace(/\.json$/, `.${Date.now()}.json`);
    await this.backend.putRecordIfAbsent(q, bytes).catch(() => undefined);
    await this.backend.delete(rk).catch(() => undefined);
  }
}
