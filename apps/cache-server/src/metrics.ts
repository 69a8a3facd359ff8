import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { ScrubProgress } from './storage/scrubber';
import { TRUSTED } from './tokens';

/** `trusted`, `untrusted` (a pull request's namespace) or `none` (unauthenticated): never a namespace name. */
export type NamespaceKind = 'trusted' | 'untrusted' | 'none';

/** The namespace kind used as a metrics label. */
export function namespaceKind(namespace: string | undefined): NamespaceKind {
  if (!namespace) return 'none';
  return namespace === TRUSTED ? 'trusted' : 'untrusted';
}

/**
 * The server's Prometheus metrics (prom-client, text exposition format 0.0.4), in a registry of its own so
 * several servers can live in one process. Labels are bounded: method, status, namespace kind, result, reason;
 * never a token, an identity, a namespace name or a hash.
 */
export class CacheMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'method' | 'status' | 'namespace_kind'>;
  /** body bytes received by accepted PUTs */
  readonly bytesIn: Counter;
  /** body bytes sent by GETs */
  readonly bytesOut: Counter;
  readonly lookups: Counter<'result' | 'namespace_kind'>;
  readonly rejected: Counter<'reason'>;
  readonly evictions: Counter;
  readonly evictedBytes: Counter;

  /**
   * @param storeBytes current bytes held by the store (directory store with a cap), or undefined when unknown
   * @param scrub the scrubber's progress and rate (bytes/s), when it runs
   */
  constructor(storeBytes: () => number | undefined = () => undefined, scrub?: () => { progress: ScrubProgress; rateBytesPerSecond: number }) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'buildonce_cache_requests_total',
      help: 'Cache requests by method, HTTP status and namespace kind',
      labelNames: ['method', 'status', 'namespace_kind'],
      registers,
    });
    this.bytesIn = new Counter({ name: 'buildonce_cache_received_bytes_total', help: 'Body bytes of stored PUTs', registers });
    this.bytesOut = new Counter({ name: 'buildonce_cache_sent_bytes_total', help: 'Body bytes sent by GET hits', registers });
    this.lookups = new Counter({
      name: 'buildonce_cache_lookups_total',
      help: 'GET lookups by result (hit, miss, corrupt) and namespace kind of the reader',
      labelNames: ['result', 'namespace_kind'],
      registers,
    });
    this.rejected = new Counter({
      name: 'buildonce_cache_rejected_bodies_total',
      help: 'PUT bodies refused, by reason (not-gzip, bad-archive, unsafe-entry, too-large, incomplete)',
      labelNames: ['reason'],
      registers,
    });
    this.evictions = new Counter({
      name: 'buildonce_cache_evictions_total',
      help: 'Entries evicted to keep the directory store under BUILDONCE_CACHE_MAX_STORE_BYTES',
      registers,
    });
    this.evictedBytes = new Counter({ name: 'buildonce_cache_evicted_bytes_total', help: 'Bytes of evicted entries', registers });
    new Gauge({
      name: 'buildonce_cache_store_bytes',
      help: 'Bytes of entries held by the directory store (tracked when BUILDONCE_CACHE_MAX_STORE_BYTES is set)',
      registers,
      collect() {
        const b = storeBytes();
        if (b !== undefined) this.set(b);
      },
    });
    if (scrub) this.scrubMetrics(scrub);
    collectDefaultMetrics({ register: this.registry, prefix: 'buildonce_cache_' });
  }

  private scrubMetrics(scrub: () => { progress: ScrubProgress; rateBytesPerSecond: number }): void {
    const registers = [this.registry];
    new Gauge({
      name: 'buildonce_cache_scrub_checked_entries',
      help: 'Entries re-hashed at rest by the scrubber since start, by result (ok, corrupt = quarantined, gone = changed while read)',
      labelNames: ['result'],
      registers,
      collect() {
        for (const [result, n] of Object.entries(scrub().progress.checked)) this.set({ result }, n);
      },
    });
    const gauge = (name: string, help: string, value: () => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(value());
        },
      });
    gauge('buildonce_cache_scrub_checked_bytes', 'Blob bytes re-hashed by the scrubber since start', () => scrub().progress.bytes);
    gauge('buildonce_cache_scrub_passes', 'Complete scrubber passes over the store since start', () => scrub().progress.passes);
    gauge('buildonce_cache_scrub_failed_passes', 'Scrubber passes stopped by a storage error since start', () => scrub().progress.failedPasses);
    gauge('buildonce_cache_scrub_pass_entries', 'Entries judged so far in the scrubber pass under way (0 between passes)', () => scrub().progress.passEntries);
    gauge(
      'buildonce_cache_scrub_last_pass_end_seconds',
      'Unix time the last complete scrubber pass ended (0: none yet)',
      () => scrub().progress.lastPassEndMs / 1000,
    );
    gauge('buildonce_cache_scrub_rate_bytes_per_second', 'Configured scrubber rate (BUILDONCE_CACHE_SCRUB_MIB_PER_S)', () => scrub().rateBytesPerSecond);
  }
}
