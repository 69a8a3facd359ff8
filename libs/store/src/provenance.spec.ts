import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseManifest } from '@buildonce/artifact';
import { openStore } from './open';
import { parseStoreUrl } from './url';
import { PUBLISH_LEASE_SUFFIX, publishArtifact, publishMetadataFromEnv } from './artifacts';
import { provenanceKey } from './keys';
import type { BlobStore } from './blob';
import type { ProjectName, Version } from '@buildonce/values';
import { writeTestBuildOutput } from '@buildonce/testing';

const root = mkdtempSync(join(tmpdir(), 'buildonce-prov-store-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A store that records the order of create-only writes. */
function recording(store: BlobStore, writes: string[]): BlobStore {
  return new Proxy(store, {
    get(target, prop, recv) {
      const v = Reflect.get(target, prop, recv);
      if (prop === 'putBytesIfAbsent' || prop === 'putFileIfAbsent') {
        return (key: string, ...rest: unknown[]) => {
          writes.push(key);
          return (v as (...a: unknown[]) => unknown).call(target, key, ...rest);
        };
      }
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

describe('publishArtifact with provenance', () => {
  it('orders the writes: files, provenance, manifest (manifest last)', async () => {
    const writes: string[] = [];
    const store = recording(openStore(parseStoreUrl(`file://${mkdtempSync(join(root, 'store-'))}`)), writes);
    const dir = buildOutput('7');
    const manifest = parseManifest(JSON.parse(readFileSync(join(dir, 'artifact.json'), 'utf8')));
    await publishArtifact({ store, manifest, dir, metadata: publishMetadataFromEnv({}), provenance: async () => Buffer.from('{}') });
    // the publish lease (which keeps retention away) is written before anything of the version
    expect(writes[0]).toMatch(new RegExp(`^artifacts/svc/7/publish\\+[0-9a-f-]+\\${PUBLISH_LEASE_SUFFIX}$`));
    expect(writes.slice(1)).toEqual(['artifacts/svc/7/bootstrap.zip', provenanceKey('svc' as ProjectName, '7' as Version), 'artifacts/svc/7/manifest.json']);
  });

  it('keeps an envelope written by an earlier attempt of the same version (create-only)', async () => {
    const storeDir = mkdtempSync(join(root, 'store-'));
    const store = openStore(parseStoreUrl(`file://${storeDir}`));
    const dir = buildOutput('8');
    const manifest = parseManifest(JSON.parse(readFileSync(join(dir, 'artifact.json'), 'utf8')));
    await store.putBytesIfAbsent(provenanceKey('svc' as ProjectName, '8' as Version), Buffer.from('first'));
    const lines: string[] = [];
    const r = await publishArtifact({
      store,
      manifest,
      dir,
      metadata: publishMetadataFromEnv({}),
      provenance: async () => Buffer.from('second'),
      log: (l) => lines.push(l),
    });
    expect(r.status).toBe('published');
    expect(readFileSync(join(storeDir, provenanceKey('svc' as ProjectName, '8' as Version)), 'utf8')).toBe('first');
    expect(lines.some((l) => l.startsWith('kept '))).toBe(true);
  });
});

function buildOutput(version: string): string {
  return writeTestBuildOutput(mkdtempSync(join(root, 'out-')), { version, bytes: Buffer.from(`zip bytes ${version}`), toolchain: 'cargo 1.95' });
}
