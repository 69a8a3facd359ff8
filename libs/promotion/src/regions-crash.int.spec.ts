import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRegionStore } from '@buildonce/store';
import { parseConfig, resolveEnvironment } from '@buildonce/config';
import { FileTarget, publishFake, runWithCrashPoint, startMoto, unusedAwsClients, type MotoServer } from '@buildonce/testing';
import { listSeqs, readCurrent, readHistory } from '@buildonce/ledger';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';
import { promoteVersion, type PromoteRequest } from './promote';

/*
 * A multi-region promotion killed between two regions (one region deployed, the other not) is repaired by
 * the next promotion like an interrupted single-region one: recorded once as interrupted, every region
 * deployed again, contiguous history, pointer = newest succeeded entry = what every region runs.
 */
const child = join(__dirname, '../../testing/src/release/regions-crash-child.ts');
let moto: MotoServer;
let dir: string;
const saved = { ...process.env };

beforeAll(async () => {
  moto = await startMoto();
  Object.assign(process.env, moto.env);
  await moto.createBucket('crash-home');
  await moto.createBucket('crash-euw1', 'eu-west-1');
  dir = mkdtempSync(join(tmpdir(), 'regions-crash-'));
});
afterAll(async () => {
  process.env = saved;
  await moto?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('multi-region crash', () => {
  it('a promotion killed between two regions is repaired by the next one', async () => {
    const homeUrl = 's3://crash-home/p';
    const euUrl = 's3://crash-euw1/p';
    const home = openRegionStore(homeUrl, 'us-east-1');
    for (const v of ['1', '2', '3']) await publishFake(home, { project: 'svc' as ProjectName, version: v as Version });
    const use1 = new FileTarget(join(dir, 'us-east-1'));
    const euw1 = new FileTarget(join(dir, 'eu-west-1'));
    const environment = resolveEnvironment(
      parseConfig({ store: homeUrl, environments: [{ name: 'prod', regions: { 'us-east-1': {}, 'eu-west-1': { store: euUrl } } }] }),
      'prod' as EnvironmentName,
    );
    const req = (version: string): PromoteRequest => ({
      store: home,
      aws: unusedAwsClients(),
      project: 'svc' as ProjectName,
      version: version as Version,
      environment,
      target: use1,
      regions: [
        { name: 'us-east-1', store: home, home: true, target: use1 },
        { name: 'eu-west-1', store: openRegionStore(euUrl, 'eu-west-1'), home: false, target: euw1 },
      ],
      meta: { commit: 'c', runId: 'parent', actor: 'parent' },
      lock: { ttlMs: 1_000, waitMs: 30_000 },
      log: () => undefined,
    });
    expect((await promoteVersion(req('1'))).status).toBe('promoted');

    const r = await runWithCrashPoint(child, [homeUrl, euUrl, dir, '2'], 'between-regions', { cwd: __dirname, env: { ...process.env, ...moto.env } });
    expect(r.signal, r.stderr).toBe('SIGKILL');
    expect([use1.live(), euw1.live()]).toEqual(['2', '1']);
    await sleep(1_200); // the killed promoter's lease expires

    // the same version again: an interrupted entry means what runs is unknown, so every region deploys
    const again = await promoteVersion(req('2'));
    expect(again.status).toBe('promoted');
    expect([use1.live(), euw1.live()]).toEqual(['2', '2']);
    const seqs = await listSeqs(home, 'svc' as ProjectName, 'prod' as EnvironmentName);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    const h = await readHistory(home, 'svc' as ProjectName, 'prod' as EnvironmentName);
    expect(h.map((e) => [e.version, e.status, e.error?.startsWith('interrupted') ?? false])).toEqual([
      ['1', 'succeeded', false],
      ['2', 'failed', true],
      ['2', 'succeeded', false],
    ]);
    expect(h.at(-1)!.regions).toMatchObject({ 'us-east-1': { status: 'succeeded', copy: 'home' }, 'eu-west-1': { status: 'succeeded', copy: 'present' } }); // the killed promotion had copied it
    expect((await readCurrent(home, 'svc' as ProjectName, 'prod' as EnvironmentName))!.entry.seq).toBe(3);
    expect((await promoteVersion(req('3'))).status).toBe('promoted');
    expect([use1.live(), euw1.live()]).toEqual(['3', '3']);
  });
});
