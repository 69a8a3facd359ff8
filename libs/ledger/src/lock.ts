import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffDelay, type Backoff } from '@buildonce/retry';
import { z } from 'zod';
import { lockKey, type BlobStore } from '@buildonce/store';
import { LedgerError, LockTimeoutError } from '@buildonce/errors';
import { versionSchema, type EnvironmentName, type ProjectName, type Version } from '@buildonce/values';

/**
 * Per project+environment promotion lock: `releases/<project>/<env>/lock.json`, a lease held by
 * compare-and-swap only (no deletes): acquire = create (`If-None-Match: *`) or take over a released
 * or expired lease (`If-Match: <ETag>`); renew = CAS a later `expiresAt`; release = CAS
 * `state: "released"`. It serialises deploy + record so the order of deploys equals the order of
 * history entries (the ledger itself stays correct without it, see appendEntry).
 */
const leaseFields = {
  state: z.enum(['held', 'released']),
  owner: z.string(),
  actor: z.string(),
  runId: z.string().nullable(),
  /** what the holder is doing, e.g. `promote 123` / `rollback 99` */
  purpose: z.string(),
  version: versionSchema.nullable(),
  acquiredAt: z.string(),
  /** ISO 8601; a held lease past this instant may be taken over */
  expiresAt: z.string(),
};
/** A lease as it was when its holder stopped renewing (carried inside later leases until recorded). */
export const interruptedLeaseSchema = z.object(leaseFields).strict();
export type InterruptedLease = z.infer<typeof interruptedLeaseSchema>;
export const leaseSchema = z
  .object({
    ...leaseFields,
    /**
     * Expired leases taken over whose promotions are not yet recorded as interrupted. The takeover writes
     * them into the new lease in the same compare-and-swap, and every later lease keeps them until their
     * entries are appended, so an interrupted deploy is never forgotten, whatever fails after the takeover.
     */
    unrecorded: z.array(interruptedLeaseSchema).optional(),
  })
  .strict();
export type Lease = z.infer<typeof leaseSchema>;

export interface LockOptions {
  store: BlobStore;
  project: ProjectName;
  env: EnvironmentName;
  actor: string;
  runId: string | null;
  purpose: string;
  version: Version | null;
  /** lease length, ms (renewed every ttl/3 while held). Default 60 000 */
  ttlMs?: number;
  /** give up waiting after this long, ms. Default 900 000 */
  waitMs?: number;
  /** one line when waiting starts and when an expired lease is taken over */
  log?: (line: string) => void;
  now?: () => number;
}

/** A held lock. `unrecorded` lists leases of holders that stopped renewing (crash / cancel) before recording. */
export interface HeldLock {
  /**
   * Promotions whose holders stopped before recording (their deploys may be partly applied), oldest first:
   * an expired lease this acquisition took over, and any that lease still carried. Empty when none.
   * They stay in the lease (and reach the next holder) until {@link HeldLock.recorded} is called.
   */
  readonly unrecorded: readonly InterruptedLease[];
  /** the caller has appended an entry for every `unrecorded` lease: later lease writes drop them */
  recorded(): void;
  /** false once a renewal found the lease taken over by someone else, or the last expiry written has passed (renewals failing) */
  readonly held: boolean;
  release(): Promise<void>;
  /** stops renewing without releasing: the lease expires and the next holder records this promotion (and any `unrecorded`) as interrupted */
  abandon(): Promise<void>;
}

function parseLease(bytes: Buffer, uri: string): Lease {
  try {
    return leaseSchema.parse(JSON.parse(bytes.toString()));
  } catch (e) {
    throw new LedgerError(`${uri} is not a valid lock (${(e as Error).message.split('\n')[0]}): delete it if no promotion is running`);
  }
}

/**
 * Reads the lease of a project+environment; undefined when there is none.
 * @throws LedgerError for a corrupt lock object, StoreAccessError
 */
export async function readLease(store: BlobStore, project: ProjectName, env: EnvironmentName): Promise<Lease | undefined> {
  const key = lockKey(project, env);
  const got = await store.getBytes(key);
  return got ? parseLease(got.bytes, store.uriOf(key)) : undefined;
}

/** Polling a held lock: 100 ms growing by 1.5 up to 2 s, each between half and all of it (waiters spread out). */
const LOCK_POLL: Backoff = { minTimeout: 100, factor: 1.5, maxTimeout: 2000, jitter: 'half' };
/** After a lost conditional write on the lock: up to 50 ms, random, then read again. */
const LOST_RACE: Backoff = { minTimeout: 50, jitter: 'full' };

/**
 * Acquires the promotion lock of a project+environment, waiting (polling with backoff, 100 ms → 2 s)
 * while another live promotion holds it. Every lease names its owner (a random id per acquisition): a
 * write of ours that was applied but whose response was lost (412 on retry) is recognised by that
 * owner and counts as acquired, keeping the expired lease it took over (docs/architecture.md, invariant 8).
 * @throws LockTimeoutError naming the holder after `waitMs`; LedgerError for a corrupt lock object
 */
export async function acquireLock(o: LockOptions): Promise<HeldLock> {
  const { store } = o;
  const key = lockKey(o.project, o.env);
  const ttl = o.ttlMs ?? 60_000;
  const waitMs = o.waitMs ?? 900_000;
  const now = o.now ?? Date.now;
  const owner = randomUUID();
  const start = now();
  /** what every write of our lease carries until the caller has recorded it */
  let carried: InterruptedLease[] = [];
  /** the expiry written by the last lease we built (it becomes ours once that write succeeds), epoch ms */
  let builtExpiry = 0;
  const lease = (state: Lease['state']): Buffer =>
    Buffer.from(
      JSON.stringify({
        state,
        owner,
        actor: o.actor,
        runId: o.runId,
        purpose: o.purpose,
        version: o.version,
        acquiredAt: new Date(start).toISOString(),
        expiresAt: new Date((builtExpiry = now() + ttl)).toISOString(),
        ...(carried.length ? { unrecorded: carried } : {}),
      } satisfies Lease) + '\n',
    );
  let waitingLogged = false;
  for (let attempt = 0; ; attempt++) {
    const got = await store.getBytes(key);
    let expected: string | null = null;
    let acquired: string | undefined;
    if (got) {
      const cur = parseLease(got.bytes, store.uriOf(key));
      if (cur.owner === owner && cur.state === 'held') {
        // our own lease: an earlier write of ours was applied but its response was lost; what it carries is ours to record
        acquired = got.etag;
        builtExpiry = Date.parse(cur.expiresAt);
        carried = cur.unrecorded ?? [];
      }
      const expired = Date.parse(cur.expiresAt) <= now();
      if (acquired === undefined && cur.state === 'held' && !expired) {
        if (now() - start >= waitMs) {
          throw new LockTimeoutError(
            `${o.project}/${o.env} is locked by ${cur.actor}${cur.runId ? ` (run ${cur.runId})` : ''} doing "${cur.purpose}" since ${cur.acquiredAt}; gave up after ${Math.round(waitMs / 1000)} s`,
          );
        }
        if (!waitingLogged) {
          o.log?.(`waiting for ${o.env} lock held by ${cur.actor}${cur.runId ? ` (run ${cur.runId})` : ''} doing "${cur.purpose}"`);
          waitingLogged = true;
        }
        await sleep(backoffDelay(attempt + 1, LOCK_POLL));
        continue;
      }
      if (acquired === undefined) {
        // a released lease may still carry unrecorded promotions (its holder could not record them); an expired held one is one itself
        const { unrecorded = [], ...self } = cur;
        carried = cur.state === 'held' ? [...unrecorded, self] : unrecorded;
        expected = got.etag;
      }
    } else carried = [];
    if (acquired === undefined) {
      const r = await store.putBytesIfMatch(key, lease('held'), expected);
      if (r.status !== 'written') {
        await sleep(backoffDelay(1, LOST_RACE));
        continue;
      }
      acquired = r.etag;
    }
    for (const l of carried) o.log?.(`took over an expired ${o.env} lock of ${l.actor} ("${l.purpose}", expired ${l.expiresAt}), not yet recorded`);
    const unrecorded = [...carried];
    let etag = acquired;
    let held = true;
    // held only until the last expiry we know was written: renewals that keep failing must not outlive the lease
    let validUntil = builtExpiry;
    let renewing: Promise<void> = Promise.resolve();
    const timer = setInterval(
      () => {
        renewing = renewing.then(async () => {
          if (!held) return;
          const w = await store.putBytesIfMatch(key, lease('held'), etag).catch(() => undefined);
          if (w?.status === 'written') {
            etag = w.etag;
            validUntil = builtExpiry;
          } else if (w?.status === 'precondition-failed') {
            // a renewal whose response was lost also ends here: the lease may still be ours
            const again = await store.getBytes(key).catch(() => undefined);
            const cur = again
              ? (() => {
                  try {
                    return parseLease(again.bytes, store.uriOf(key));
                  } catch {
                    return undefined;
                  }
                })()
              : undefined;
            if (again && cur?.owner === owner && cur.state === 'held') {
              etag = again.etag;
              validUntil = Date.parse(cur.expiresAt);
            } else {
              held = false;
              o.log?.(`lost the ${o.env} lock (taken over after expiry)`);
            }
          }
        });
      },
      Math.max(200, Math.floor(ttl / 3)),
    );
    timer.unref();
    return {
      unrecorded,
      recorded() {
        carried = [];
      },
      get held() {
        return held && now() < validUntil;
      },
      async abandon() {
        clearInterval(timer);
        await renewing;
        held = false;
      },
      async release() {
        clearInterval(timer);
        await renewing;
        if (!held) return;
        held = false;
        const w = await store.putBytesIfMatch(key, lease('released'), etag).catch(() => undefined);
        if (w?.status === 'precondition-failed') {
          // our renewal or an earlier release landed without its response: release what is still ours
          const again = await store.getBytes(key).catch(() => undefined);
          if (
            again &&
            (() => {
              try {
                return parseLease(again.bytes, store.uriOf(key)).owner === owner;
              } catch {
                return false;
              }
            })()
          ) {
            await store.putBytesIfMatch(key, lease('released'), again.etag).catch(() => undefined);
          }
        }
      },
    };
  }
}
