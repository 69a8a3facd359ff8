import { afterAll, describe, expect, it } from 'vitest';
import { openStore, parseStoreUrl } from '@buildonce/store';
import { ConfigError } from '@buildonce/errors';
import { removeTempDirs, tempDir, unusedAwsClients } from '@buildonce/testing';
import { parseConfig, resolveEnvironment } from '@buildonce/config';
import { readHistory } from '@buildonce/ledger';
import { parseReason } from './metadata';
import { promoteVersion } from './promote';
import { rollbackEnvironment } from './rollback';
import { FakeTarget, publishFake } from '@buildonce/testing';
import type { ProjectName, Version, EnvironmentName } from '@buildonce/values';

afterAll(removeTempDirs);

describe('--reason', () => {
  it('parseReason trims and refuses empty, multi-line and over-long reasons', () => {
    expect(parseReason(undefined)).toBeUndefined();
    expect(parseReason('  error rate after 1.4.2 ')).toBe('error rate after 1.4.2');
    for (const bad of ['', '   ', 'a\nb', 'a\rb', 'x'.repeat(501)]) expect(() => parseReason(bad), JSON.stringify(bad)).toThrow(ConfigError);
  });

  it('is recorded on promotions and rollbacks; an automatic rollback records the failed check as its reason', async () => {
    const store = openStore(parseStoreUrl(`file://${tempDir('reason-')}`));
    const config = parseConfig({
      environments: [{ name: 'dev', verify: { kind: 'command', command: ['node', '-e', 'process.exit(process.env.BUILDONCE_VERSION === "3" ? 4 : 0)'] } }],
    });
    const environment = resolveEnvironment(config, 'dev' as EnvironmentName);
    const target = new FakeTarget();
    const noAws = unusedAwsClients();
    const verify = {
      checks: environment.kind === 'chain' ? environment.verify! : [],
      workspaceRoot: process.cwd(),
      lambda: noAws.lambda,
      cloudwatch: noAws.cloudwatch,
    };
    for (const v of ['1', '2', '3']) await publishFake(store, { project: 'svc' as ProjectName, version: v as Version });
    const base = { store, project: 'svc' as ProjectName, environment, target, log: () => undefined, verify, aws: unusedAwsClients() };
    await promoteVersion({ ...base, version: '1' as Version, meta: { commit: null, runId: null, actor: 'a' } });
    await promoteVersion({ ...base, version: '2' as Version, meta: { commit: null, runId: null, actor: 'a', reason: 'new weights' } });
    await rollbackEnvironment({ ...base, meta: { commit: null, runId: null, actor: 'b', reason: 'p99 doubled' } });
    await rollbackEnvironment({ ...base, to: '2' as Version, meta: { commit: null, runId: null, actor: 'b' } });
    await expect(promoteVersion({ ...base, version: '3' as Version, meta: { commit: null, runId: null, actor: 'c', reason: 'try 3' } })).rejects.toThrow(
      /rolled back to 2/,
    );
    const h = await readHistory(store, 'svc' as ProjectName, 'dev' as EnvironmentName);
    expect(h.map((e) => [e.version, e.status, e.rollback, e.reason, e.automatic])).toEqual([
      ['1', 'succeeded', false, undefined, undefined],
      ['2', 'succeeded', false, 'new weights', undefined],
      ['1', 'succeeded', true, 'p99 doubled', undefined],
      ['2', 'succeeded', true, undefined, undefined],
      ['3', 'failed', false, 'try 3', undefined],
      ['2', 'succeeded', true, expect.stringMatching(/^verification failed: 3 in dev \(seq 5\): command node -e .* exited 4/), true],
    ]);
  });
});
