import { describe, expect, it } from 'vitest';
import { parseConfig, resolveEnvironment } from '@buildonce/config';
import type { HistoryEntry } from '@buildonce/ledger';
import { checkPolicy } from './policy';
import { planRollback } from './rollback';
import type { EnvironmentName, Version, ProjectName } from '@buildonce/values';
import { historyEntryOf } from '@buildonce/testing';

let seq = 0;
function entry(version: string, o: Partial<HistoryEntry> = {}): HistoryEntry {
  seq++;
  return historyEntryOf(version, { seq, environment: 'prod' as EnvironmentName, commit: `c${version}`, ...o });
}

describe('policy', () => {
  const config = parseConfig({ environments: [{ name: 'dev' }, { name: 'staging' }, { name: 'prod', soakMinutes: 30 }] });
  const prod = resolveEnvironment(config, 'prod' as EnvironmentName);
  const now = new Date('2026-01-01T01:00:00.000Z');

  it('requires a succeeded entry of the same version upstream', () => {
    expect(checkPolicy(prod, '5' as Version, {}, now)).toEqual({
      ok: false,
      reason: 'version 5 has not succeeded in staging, which prod requires: promote it to staging first (--env=staging)',
    });
    expect(checkPolicy(prod, '5' as Version, { staging: entry('5', { status: 'failed' }) }, now).ok).toBe(false);
    expect(checkPolicy(prod, '5' as Version, { staging: entry('4') }, now).ok).toBe(false);
    expect(checkPolicy(prod, '5' as Version, { staging: entry('5') }, now)).toEqual({ ok: true });
  });
  it('enforces soak minutes', () => {
    const r = checkPolicy(prod, '5' as Version, { staging: entry('5', { finishedAt: '2026-01-01T00:45:00.000Z' }) }, now);
    expect(r).toEqual({ ok: false, reason: 'version 5 reached staging at 2026-01-01T00:45:00.000Z; prod needs 30 min of soak there, 15 min left' });
  });
  it('lets chain heads and previews through', () => {
    expect(checkPolicy(resolveEnvironment(config, 'dev' as EnvironmentName), '5' as Version, {}, now).ok).toBe(true);
    expect(checkPolicy(resolveEnvironment(config, 'pr-3' as EnvironmentName), '5' as Version, {}, now).ok).toBe(true);
  });
});

describe('planRollback', () => {
  it('goes back one version at a time, never toggling', () => {
    const h = [entry('1'), entry('2'), entry('3', { status: 'failed' }), entry('3')];
    expect(planRollback(h, 'prod' as EnvironmentName).version).toBe('2');
    const h2 = [...h, entry('2', { rollback: true })];
    expect(planRollback(h2, 'prod' as EnvironmentName).version).toBe('1');
    const h3 = [...h2, entry('1', { rollback: true })];
    expect(() => planRollback(h3, 'prod' as EnvironmentName)).toThrow(/no earlier version to roll back to/);
  });
  it('re-promoting an old version stacks it', () => {
    const h = [entry('1'), entry('2'), entry('1')];
    expect(planRollback(h, 'prod' as EnvironmentName).version).toBe('2');
  });
  it('restores the newest succeeded entry of a named version', () => {
    const h = [entry('1'), entry('2'), entry('1', { commit: 'newer' }), entry('3')];
    expect(planRollback(h, 'prod' as EnvironmentName, '1').commit).toBe('newer');
    expect(() => planRollback(h, 'prod' as EnvironmentName, '9')).toThrow('version 9 never succeeded in prod: pick one from its history (releases --env=prod)');
    expect(() => planRollback([], 'prod' as EnvironmentName)).toThrow(/no successful release/);
  });
});
