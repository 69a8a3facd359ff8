import { randomUUID } from 'node:crypto';
import type { CacheBackend } from './backend';
import { parseRecord, recordKey } from './cache-store';

/** What the shared LRU needs from the store besides the CacheBackend operations (S3CacheBackend has them). */
export interface SharedLruStore extends CacheBackend {
  getWithEtag(key: string): Promise<{ bytes: Buffer; etag: string } | undefined>;
  putIfMatch(key: string, bytes: Uint8Array, etag: string | null): Promise<'written' | 'precondition-failed'>;
  listKeys(prefix: string): AsyncIterable<{ key: string; lastModified: Date; size: number }>;
  listRecords(prefix: string): AsyncIterable<{ key: string; mtimeMs: number; bytes: Buffer }>;
}

export interface SharedLruOptions {
  /** cap on the bytes of stored entries (BUILDONCE_CACHE_MAX_STORE_BYTES) */
  maxStoreBytes: number;
  /** how often a replica writes its access log and tries to evict, ms (default 30 000) */
  cycleMs?: number;
  /** lease duration, ms (default 4 × cycleMs): an evictor that died is replaced after this */
  leaseMs?: number;
  /** entries accessed (or being streamed) this recently are never evicted, ms (default 3 × cycleMs) */
  protectMs?: number;
  /** this replica's name in leases and access logs (default a random UUID) */
  replicaId?: string;
  onEvict?: (info: { namespace: string; hash: string; size: number }) => void;
  onError?: (e: Error) => void;
  /** clock, ms since epoch (tests) */
  now?: () => number;
}

const LRU_DIR = 'v1/lru';
const LEASE_KEY = `${LRU_DIR}/lease.json`;
const COMPACTED_KEY = `${LRU_DIR}/compacted.json`;
const ACCESS_DIR = `${LRU_DIR}/access/`;

/**
 * LRU cap for several stateless replicas on one S3 bucket. No replica holds the truth in memory:
 * - **recency lives in the bucket**: each replica records the entries it served (and those it is still streaming,
 *   as "accessed now") and writes them every `cycleMs` as one create-only access-log object
 *   `v1/lru/access/<ms>-<replica>.json`;
 * - **one evictor at a time**: every cycle each replica tries to take or renew the lease `v1/lru/lease.json`
 *   (`PutObject` with `If-None-Match: *`, or `If-Match: <ETag>` to take over an expired lease or renew its own);
 *   the holder merges the access logs into `v1/lru/compacted.json` (newest access per record), deletes the logs it
 *   merged, lists the records, and evicts least-recently-used entries until the bytes fit the cap;
 * - **never an entry being streamed**: entries accessed within `protectMs` (3 cycles) are skipped; a replica
 *   reports every entry it is still streaming in each log, so a long download keeps its entry protected;
 * - eviction deletes the record only while it is still the listed one (`If-Match`), then the blob.
 * Staleness bound: an access reaches the evictor at most `cycleMs` after it happened (the next log write), and
 * the cap may be exceeded by what is uploaded within one cycle (eviction is periodic, not before each PUT).
 * Clocks: access times are each replica's wall clock; NTP-level skew (≪ `cycleMs`) is assumed.
 */
export class SharedLru {
  readonly replicaId: string;
  /** the cap, bytes */
  readonly capBytes: number;
  private readonly cycleMs: number;
  private readonly leaseMs: number;
  private readonly protectMs: number;
  private readonly now: () => number;
  /** record key -> last access (ms) not yet written to the bucket */
  private pending = new Map<string, number>();
  /** record key -> GETs of this replica streaming it now */
  private readonly streaming = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private leaseEtag?: string;
  /** bytes of entries at the last eviction pass (this replica's view; undefined until it held the lease) */
  lastSeenBytes?: number;

  constructor(
    private readonly store: SharedLruStore,
    private readonly opts: SharedLruOptions,
  ) {
    this.replicaId = opts.replicaId ?? randomUUID();
    this.capBytes = opts.maxStoreBytes;
    this.cycleMs = opts.cycleMs ?? 30_000;
    this.leaseMs = opts.leaseMs ?? 4 * this.cycleMs;
    this.protectMs = opts.protectMs ?? 3 * this.cycleMs;
    this.now = opts.now ?? Date.now;
  }

  /** A GET served `rk` (or starts streaming it): recorded for the next access log; call `done` when it closes. */
  begin(rk: string): () => void {
    this.pending.set(rk, this.now());
    this.streaming.set(rk, (this.streaming.get(rk) ?? 0) + 1);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      const left = (this.streaming.get(rk) ?? 1) - 1;
      if (left > 0) this.streaming.set(rk, left);
      else this.streaming.delete(rk);
      this.pending.set(rk, this.now());
    };
  }

  /** Starts the periodic cycle (access log + eviction attempt). */
  start(): void {
    const tick = () => {
      this.running = this.cycle()
        .then(() => undefined)
        .catch((e: Error) => this.opts.onError?.(e))
        .finally(() => {
          if (this.timer) this.timer = setTimeout(tick, this.cycleMs).unref();
        });
    };
    this.timer = setTimeout(tick, this.cycleMs).unref();
  }

  /** Stops the cycle, writes the last access log, gives the lease up. */
  async stop(): Promise<void> {
    const t = this.timer;
    this.timer = undefined;
    if (t) clearTimeout(t);
    await this.running;
    await this.flush().catch(() => undefined);
    await this.releaseLease().catch(() => undefined);
  }

  /** One cycle: write this replica's access log, then evict if this replica holds (or can take) the lease. */
  async cycle(): Promise<{ evicted: number; storeBytes?: number }> {
    await this.flush();
    if (!(await this.acquireLease())) return { evicted: 0 };
    return this.evict();
  }

  /** Writes the accesses seen since the last flush, plus every entry still streaming as accessed now. */
  async flush(): Promise<void> {
    const now = this.now();
    for (const rk of this.streaming.keys()) this.pending.set(rk, now);
    if (!this.pending.size) return;
    const accesses = Object.fromEntries(this.pending);
    this.pending = new Map();
    const key = `${ACCESS_DIR}${String(now).padStart(15, '0')}-${this.replicaId}-${randomUUID().slice(0, 8)}.json`;
    await this.store.putRecordIfAbsent(key, Buffer.from(JSON.stringify({ replica: this.replicaId, at: now, accesses })));
  }

  /** Takes the lease when free or expired, renews it when held. @returns whether this replica holds it now */
  async acquireLease(): Promise<boolean> {
    const now = this.now();
    const body = Buffer.from(JSON.stringify({ holder: this.replicaId, expiresAt: now + this.leaseMs }));
    const cur = await this.store.getWithEtag(LEASE_KEY);
    if (cur) {
      let lease: { holder?: string; expiresAt?: number } = {};
      try {
        lease = JSON.parse(cur.bytes.toString()) as typeof lease;
      } catch {
        /* a torn lease is an expired one */
      }
      if (lease.holder !== this.replicaId && typeof lease.expiresAt === 'number' && lease.expiresAt > now) return false;
    }
    const out = await this.store.putIfMatch(LEASE_KEY, body, cur ? cur.etag : null);
    if (out !== 'written') return false;
    this.leaseEtag = (await this.store.getWithEtag(LEASE_KEY))?.etag;
    return true;
  }

  private async releaseLease(): Promise<void> {
    const cur = await this.store.getWithEtag(LEASE_KEY);
    if (!cur || cur.etag !== this.leaseEtag) return;
    await this.store.deleteRecordIfSame(LEASE_KEY, cur.bytes);
  }

  /** Lease holder only: compacts the access logs and evicts down to the cap. */
  private async evict(): Promise<{ evicted: number; storeBytes: number }> {
    const compactedObj = await this.store.getWithEtag(COMPACTED_KEY);
    const last = new Map<string, number>(compactedObj ? Object.entries(JSON.parse(compactedObj.bytes.toString()) as Record<string, number>) : []);
    const logs: string[] = [];
    for await (const o of this.store.listKeys(ACCESS_DIR)) {
      const got = await this.store.getWithEtag(o.key);
      if (!got) continue;
      logs.push(o.key);
      try {
        const { accesses } = JSON.parse(got.bytes.toString()) as { accesses: Record<string, number> };
        for (const [rk, t] of Object.entries(accesses)) if (typeof t === 'number' && t > (last.get(rk) ?? 0)) last.set(rk, t);
      } catch {
        /* a torn log only loses recency */
      }
    }
    const entries: { rk: string; size: number; blob: string; namespace: string; hash: string; bytes: Buffer; at: number }[] = [];
    let total = 0;
    for await (const r of this.store.listRecords('v1/')) {
      if (r.key.startsWith(`${LRU_DIR}/`)) continue;
      const rec = parseRecord(r.bytes);
      if (!rec || recordKey(rec.namespace, rec.hash) !== r.key) continue;
      entries.push({
        rk: r.key,
        size: rec.size,
        blob: rec.blob,
        namespace: rec.namespace,
        hash: rec.hash,
        bytes: r.bytes,
        at: Math.max(last.get(r.key) ?? 0, r.mtimeMs),
      });
      total += rec.size;
    }
    entries.sort((a, b) => a.at - b.at);
    const now = this.now();
    let evicted = 0;
    for (const e of entries) {
      if (total <= this.opts.maxStoreBytes) break;
      if (now - e.at < this.protectMs) continue;
      if ((await this.store.deleteRecordIfSame(e.rk, e.bytes)) !== 'deleted') continue;
      await this.store.delete(e.blob).catch(() => undefined);
      total -= e.size;
      evicted++;
      last.delete(e.rk);
      this.opts.onEvict?.({ namespace: e.namespace, hash: e.hash, size: e.size });
    }
    // keep recency only for entries that still exist; the merged logs are then redundant
    const live = new Set(entries.map((e) => e.rk));
    const compacted = Object.fromEntries([...last].filter(([rk]) => live.has(rk)));
    const wrote = await this.store.putIfMatch(COMPACTED_KEY, Buffer.from(JSON.stringify(compacted)), compactedObj ? compactedObj.etag : null);
    if (wrote === 'written') for (const k of logs) await this.store.delete(k).catch(() => undefined);
    this.lastSeenBytes = total;
    return { evicted, storeBytes: total };
  }
}
