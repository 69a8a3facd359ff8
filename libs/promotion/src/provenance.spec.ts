import type { KMSClient } from '@aws-sdk/client-kms';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig, resolveEnvironment } from '@buildonce/config';
import { ProvenanceError } from '@buildonce/provenance';
import { openStore, parseStoreUrl } from '@buildonce/store';
import { FakeTarget, publishFake, removeTempDirs, tempDir, unusedAwsClients } from '@buildonce/testing';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';
import { promoteVersion } from './promote';
import { rollbackEnvironment } from './rollback';

afterAll(removeTempDirs);

/** The command's AWS clients with a KMS client that records the keys asked for and refuses (no network). */
function recordingAws() {
  const asked: string[] = [];
  const kms = {
    send: async (cmd: { input: { KeyId?: string } }) => {
      asked.push(cmd.input.KeyId ?? '?');
      throw new Error('refused by the stub');
    },
  };
  return { asked, aws: { ...unusedAwsClients(), kms: () => kms as unknown as KMSClient } };
}

describe('provenance keys come from the clients the command passes down', () => {
  const config = parseConfig({ environments: [{ name: 'dev', provenance: { keys: ['kms:alias/buildonce-publish'] } }] });
  const environment = resolveEnvironment(config, 'dev' as EnvironmentName);
  const meta = { commit: 'abc123', runId: '7', actor: 'tester' };

  it('promotion resolves kms: keys through the given KMS client (never a default one of process.env)', async () => {
    const store = openStore(parseStoreUrl(`file://${tempDir('prov-kms-')}`));
    await publishFake(store, { project: 'svc' as ProjectName, version: '1' as Version });
    const { asked, aws } = recordingAws();
    const target = new FakeTarget();
    const r = promoteVersion({ store, aws, project: 'svc' as ProjectName, version: '1' as Version, environment, target, meta, log: () => undefined });
    await expect(r).rejects.toThrow(ProvenanceError);
    await expect(r).rejects.toThrow(/GetPublicKey/);
    expect(asked).toEqual(['alias/buildonce-publish']);
    expect(target.deployed).toEqual([]);
  });

  it('rollback does the same', async () => {
    const store = openStore(parseStoreUrl(`file://${tempDir('prov-kms-')}`));
    for (const v of ['1', '2']) await publishFake(store, { project: 'svc' as ProjectName, version: v as Version });
    const open = resolveEnvironment(parseConfig({ environments: [{ name: 'dev' }] }), 'dev' as EnvironmentName);
    const target = new FakeTarget();
    const base = { store, project: 'svc' as ProjectName, target, meta, log: () => undefined };
    for (const v of ['1', '2']) await promoteVersion({ ...base, aws: unusedAwsClients(), version: v as Version, environment: open });
    const { asked, aws } = recordingAws();
    await expect(rollbackEnvironment({ ...base, aws, environment })).rejects.toThrow(ProvenanceError);
    expect(asked).toEqual(['alias/buildonce-publish']);
  });
});
