import { describe, expect, it } from 'vitest';
import { parseConfig, resolveEnvironment } from '@buildonce/config';
import type { HistoryEntry } from '@buildonce/ledger';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';
import { GATES, UPSTREAM_GATES, provenanceGate, requiresGate, soakGate, trustGate, verificationGate, type UpstreamFacts } from './index';
import { historyEntryOf } from '@buildonce/testing';

const config = parseConfig({ environments: [{ name: 'dev' }, { name: 'staging' }, { name: 'prod', soakMinutes: 30 }] });
const prod = resolveEnvironment(config, 'prod' as EnvironmentName);
const now = new Date('2026-01-01T01:00:00.000Z');

const entry = (version: string, o: Partial<HistoryEntry> = {}): HistoryEntry => historyEntryOf(version, o);
const facts = (e: HistoryEntry | undefined): UpstreamFacts => ({ environment: prod, version: '5' as Version, required: 'staging', entry: e, now });
const refusedUpstream = { ok: false, reason: 'version 5 has not succeeded in staging, which prod requires: promote it to staging first (--env=staging)' };

describe('promotion gates (each pure, one decision)', () => {
  it('lists every gate once, in the order a promotion meets them', () => {
    expect(GATES.map((g) => g.name)).toEqual(['trust', 'provenance', 'requires', 'verification', 'soak']);
    expect(UPSTREAM_GATES).toEqual([requiresGate, verificationGate, soakGate]);
  });

  it('requires: a succeeded entry of the same version upstream', () => {
    expect(requiresGate(facts(undefined))).toEqual(refusedUpstream);
    expect(requiresGate(facts(entry('5', { status: 'failed' })))).toEqual(refusedUpstream);
    expect(requiresGate(facts(entry('4')))).toEqual(refusedUpstream);
    expect(requiresGate(facts(entry('5')))).toEqual({ ok: true });
  });

  it('verification: a success whose checks failed does not count; one without checks does', () => {
    expect(verificationGate(facts(entry('5', { verification: { passed: false } as HistoryEntry['verification'] })))).toEqual(refusedUpstream);
    expect(verificationGate(facts(entry('5', { verification: { passed: true } as HistoryEntry['verification'] })))).toEqual({ ok: true });
    expect(verificationGate(facts(entry('5')))).toEqual({ ok: true });
  });

  it('soak: minutes since the upstream success finished', () => {
    expect(soakGate(facts(entry('5', { finishedAt: '2026-01-01T00:45:00.000Z' })))).toEqual({
      ok: false,
      reason: 'version 5 reached staging at 2026-01-01T00:45:00.000Z; prod needs 30 min of soak there, 15 min left',
    });
    expect(soakGate(facts(entry('5', { finishedAt: '2026-01-01T00:30:00.000Z' })))).toEqual({ ok: true });
    const staging = resolveEnvironment(config, 'staging' as EnvironmentName);
    expect(soakGate({ ...facts(entry('5', { finishedAt: now.toISOString() })), environment: staging })).toEqual({ ok: true });
  });

  it('trust: chain environments take only trusted builds; previews take anything', () => {
    const base = { environment: prod, project: 'p' as ProjectName, version: '5' as Version };
    const trusted = { publish: { trusted: true, builder: 'ci' } } as never;
    const untrusted = { publish: { trusted: false, builder: 'laptop' } } as never;
    expect(trustGate({ ...base, trusted, previewUri: undefined })).toEqual({ ok: true });
    expect(trustGate({ ...base, trusted: undefined, previewUri: 'file:///s/preview/p/5/' })).toEqual({
      ok: false,
      reason:
        'version 5 of p is only in the preview namespace (file:///s/preview/p/5/): prod accepts only artifacts published by a trusted build (publish from main)',
    });
    expect(trustGate({ ...base, trusted: untrusted, previewUri: undefined })).toEqual({
      ok: false,
      reason: 'version 5 of p was published by an untrusted builder (laptop): prod accepts only trusted artifacts',
    });
    // nothing stored at all: not the trust gate's refusal (verifying the bytes says "not found")
    expect(trustGate({ ...base, trusted: undefined, previewUri: undefined })).toEqual({ ok: true });
    const preview = resolveEnvironment(config, 'pr-3' as EnvironmentName);
    expect(trustGate({ ...base, environment: preview, trusted: untrusted, previewUri: undefined })).toEqual({ ok: true });
  });

  it('provenance: a refused rule is a decision naming the rule, never a throw', () => {
    const d = provenanceGate({
      project: 'p' as ProjectName,
      version: '5' as Version,
      environment: 'prod' as EnvironmentName,
      envelope: undefined,
      source: 'file:///s/artifacts/p/5/provenance.intoto.json',
      files: [],
      policy: { required: true, keys: ['pem'], builders: [], refs: [] },
      keys: [],
    });
    expect(d.ok).toBe(false);
    if (!d.ok) {
      expect(d.rule).toBe('present');
      expect(d.reason).toMatch(/provenance\.intoto\.json is missing/);
    }
  });
});
