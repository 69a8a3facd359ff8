import { mkdtempSync, rmSync } from 'node:fs';
import { unusedAwsClients } from '@buildonce/testing';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore, parseStoreUrl } from '@buildonce/store';
import { deployedAtCrashPoint, PROMOTION_CRASH_POINTS, runWithCrashPoint } from '@buildonce/testing';
import { parseConfig, resolveEnvironment } from '@buildonce/config';
import { FileTarget } from '@buildonce/testing';
import { listSeqs, readCurrent, readHistory } from '@buildonce/ledger';
import { promoteVersion } from './promote';
import { publishFake } from '@buildonce/testing';
import type { ProjectName, Version, EnvironmentName } from '@buildonce/values';

/**
 * Crash points: a promotion (child process) is SIGKILLed at each step; the next promotion must repair:
 * contiguous history, pointer = newest succeeded entry = what the target runs, and the killed
 * promotion recorded once if it deployed (succeeded, or as an interrupted failure).
 */
const child = join(__dirname, '../../testing/src/release/crash-child.ts');
const POINTS = PROMOTION_CRASH_POINTS.map((point) => ({ point, deployed: deployedAtCrashPoint(point) }));
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('a promotion killed at each step is repaired by the next one', () => {
  it.each(POINTS)('killed $point', async ({ point, deployed }) => {
    const dir = mkdtempSync(join(tmpdir(), `crash-${point}-`));
    dirs.push(dir);
    const storeDir = join(dir, 'store');
    const live = join(dir, 'live');
    const store = openStore(parseStoreUrl(`file://${storeDir}`));
    for (const v of ['1', '2', '3']) await publishFake(store, { project: 'svc' as ProjectName, version: v as Version });
    const target = new FileTarget(live);
    const req = (version: string) => ({
      store,
      aws: unusedAwsClients(),
      project: 'svc' as ProjectName,
      version: version as Version,
      environment: resolveEnvironment(parseConfig({}), 'dev' as EnvironmentName),
      target,
      meta: { commit: 'c', runId: 'parent', actor: 'parent' },
      lock: { ttlMs: 1_000, waitMs: 30_000 },
      log: () => undefined,
    });
    await promoteVersion(req('1'));

    const r = await runWithCrashPoint(child, [storeDir, live, '2'], point, { cwd: __dirname });
    expect(r.signal, r.stderr).toBe('SIGKILL');
    expect(target.live()).toBe(deployed ? '2' : '1');
    await sleep(1_200); // the killed promoter's lease expires

    const next = await promoteVersion(req('3'));
    expect(next.status).toBe('promoted');
    const seqs = await listSeqs(store, 'svc' as ProjectName, 'dev' as EnvironmentName);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    const h = await readHistory(store, 'svc' as ProjectName, 'dev' as EnvironmentName);
    const ok = h.filter((e) => e.status === 'succeeded');
    expect((await readCurrent(store, 'svc' as ProjectName, 'dev' as EnvironmentName))!.entry.seq).toBe(ok.at(-1)!.seq);
    expect(ok.at(-1)!.version).toBe('3');
    expect(target.live()).toBe('3');
    const killed = h.filter((e) => e.version === '2');
    if (deployed) {
      expect(killed).toHaveLength(1);
      expect(killed[0]!.status === 'succeeded' || killed[0]!.error!.startsWith('interrupted')).toBe(true);
    } else {
      expect(killed.filter((e) => e.status === 'succeeded')).toEqual([]);
      expect(killed.length).toBeLessThanOrEqual(1);
    }
  });
});
