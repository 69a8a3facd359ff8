import { setTimeout as sleep } from 'node:timers/promises';
import type { CacheStore } from './cache-store';

/** Progress of the scrubber, as exported in `/metrics`. */
export interface ScrubProgress {
  /** completed passes over the whole store */
  passes: number;
  /** entries judged since start, by result */
  checked: { ok: number; corrupt: number; gone: number };
  /** blob bytes re-hashed since start */
  bytes: number;
  /** entries judged in the pass under way (0 between passes) */
  passEntries: number;
  /** when the last complete pass ended, ms since epoch (0: none yet) */
  lastPassEndMs: number;
  /** passes that stopped on a storage error (retried at the next pass) */
  failedPasses: number;
}

export interface ScrubberOptions {
  /** re-hash rate, MiB (2^20 bytes) per second; must be > 0 */
  mibPerSecond: number;
  /** pause between the end of a pass and the start of the next, ms (default 60 000) */
  pauseMs?: number;
  /** called when a pass fails on a storage error (it is retried after the pause) */
  onError?: (e: Error) => void;
}

/**
 * Paces a byte stream to `bytesPerSecond` on average: `take(n)` sleeps until `n` more bytes are due, measured from
 * the pacer's creation (a pause between calls is not made up for later by a burst beyond the rate's schedule).
 */
export class Pacer {
  private readonly startMs = performance.now();
  private due = 0;

  constructor(private readonly bytesPerSecond: number) {}

  /** Accounts for `bytes` just processed; resolves when the rate allows the next ones (rejects when `signal` aborts). */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    this.due += bytes;
    const wait = this.startMs + (this.due / this.bytesPerSecond) * 1000 - performance.now();
    if (wait > 1) await sleep(wait, undefined, { signal });
    signal?.throwIfAborted();
  }
}

/**
 * The background pass that catches bit rot and tampering at rest. GETs do not re-hash a blob whose identity is the
 * one recorded when it was written (docs/cache-server.md, threat model); this re-hashes every stored blob, one at a
 * time, at a bounded rate (`BUILDONCE_CACHE_SCRUB_MIB_PER_S`), and quarantines a mismatch exactly as a failed GET
 * does (CacheStore.scrub). Passes run back to back with `pauseMs` between them; a storage error ends the pass
 * (retried after the pause). One entry is in memory at a time (a chunk of it), so memory stays flat.
 */
export class Scrubber {
  readonly progress: ScrubProgress = { passes: 0, checked: { ok: 0, corrupt: 0, gone: 0 }, bytes: 0, passEntries: 0, lastPassEndMs: 0, failedPasses: 0 };
  private readonly bytesPerSecond: number;
  private stopping = false;
  private readonly halt = new AbortController();
  private wake?: AbortController;
  private loop?: Promise<void>;

  constructor(
    private readonly store: CacheStore,
    private readonly opts: ScrubberOptions,
  ) {
    if (!(opts.mibPerSecond > 0)) throw new RangeError(`scrub rate must be > 0 MiB/s, got ${opts.mibPerSecond}`);
    this.bytesPerSecond = opts.mibPerSecond * 1024 * 1024;
  }

  /** The configured rate in bytes per second. */
  get rateBytesPerSecond(): number {
    return this.bytesPerSecond;
  }

  /**
   * One pass over every stored entry at the configured rate.
   * @returns the entries judged in this pass by result, and the bytes re-hashed
   * @throws StoreAccessError when listing or reading fails (the pass stops there)
   */
  async runPass(): Promise<{ ok: number; corrupt: number; gone: number; bytes: number }> {
    const pacer = new Pacer(this.bytesPerSecond);
    const pace = (n: number) => pacer.take(n, this.halt.signal);
    const out = { ok: 0, corrupt: 0, gone: 0, bytes: 0 };
    this.progress.passEntries = 0;
    try {
      for await (const r of this.store.records()) {
        if (this.stopping) break;
        const { result, bytes } = await this.store.scrub(r.key, r.bytes, pace);
        out[result]++;
        out.bytes += bytes;
        this.progress.checked[result]++;
        this.progress.bytes += bytes;
        this.progress.passEntries++;
      }
    } catch (e) {
      if (!this.stopping) throw e;
    } finally {
      this.progress.passEntries = 0;
    }
    if (!this.stopping) {
      this.progress.passes++;
      this.progress.lastPassEndMs = Date.now();
    }
    return out;
  }

  /** Starts passing in the background until stop(). */
  start(): void {
    this.loop ??= (async () => {
      while (!this.stopping) {
        try {
          await this.runPass();
        } catch (e) {
          this.progress.failedPasses++;
          this.opts.onError?.(e as Error);
        }
        if (this.stopping) break;
        this.wake = new AbortController();
        await sleep(this.opts.pauseMs ?? 60_000, undefined, { signal: this.wake.signal }).catch(() => undefined);
      }
    })();
  }

  /** Stops at once: the entry being read is abandoned (not judged) at its next chunk. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.halt.abort();
    this.wake?.abort();
    await this.loop;
  }
}
