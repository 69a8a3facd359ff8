import { unusedAwsClients } from '@buildonce/testing';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseManifest, sha256Bytes } from '@buildonce/artifact';
import { parseConfig } from '@buildonce/config';
import { openStore, parseStoreUrl, publishArtifact, publishMetadataFromEnv } from '@buildonce/store';
import { loadPipeline } from './model';
import { pipelinePage } from './pages';
import { readOnlyStore } from './readonly-store';

const root = mkdtempSync(join(tmpdir(), 'ui-published-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('pipeline of a store where versions are published and none promoted yet', () => {
  it('shows a row per published project (scoped names too), every environment "not promoted" with the promote command', async () => {
    const store = openStore(parseStoreUrl(`file://${join(root, 'store')}`));
    for (const project of ['rust-scorer', '@acme/api']) {
      const dir = mkdtempSync(join(root, 'out-'));
      const bytes = Buffer.from(`bytes of ${project}`);
      writeFileSync(join(dir, 'bootstrap.zip'), bytes);
      const manifest = parseManifest({
        schemaVersion: 1,
        project,
        version: '123',
        kind: 'lambda-zip',
        files: [{ name: 'bootstrap.zip', size: bytes.length, sha256: sha256Bytes(bytes).hex }],
        runtime: 'provided.al2023',
        architecture: 'arm64',
        toolchain: 'test',
      });
      await publishArtifact({ store, manifest, dir, metadata: publishMetadataFromEnv({}) });
    }
    const model = await loadPipeline({ store: readOnlyStore(store), config: parseConfig({}), aws: unusedAwsClients() });
    expect(model.projects).toEqual(['@acme/api', 'rust-scorer']);
    const page = pipelinePage(model);
    for (const env of ['dev', 'staging', 'prod']) expect(page).toContain(`npx nx run rust-scorer:promote --env=${env}`);
    expect(page.match(/not promoted/g)?.length).toBe(6);
  });
});
