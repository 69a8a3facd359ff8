import { publishTestFile, unusedAwsClients } from '@buildonce/testing';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { serializeManifest, writeDeterministicTarGz, type Manifest, type StoredManifest } from '@buildonce/artifact';
import { FsBlobStore, artifactKey, parseStoreUrl, storedManifestKey, verifyArtifact, type BlobStore } from '@buildonce/store';
import { createDeployTarget } from './targets-factory';
import { DeployError, type DeployRequest } from './targets';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';

/*
 * A deploy installs exactly what was verified: the local target gets the manifest promotion verified and
 * checks the bytes it installs against it. Whatever happens to the store between the check and the
 * deploy (bytes swapped, manifest swapped, both swapped consistently, manifest deleted), either the
 * verified bytes go live or nothing changes.
 */
const metadata = { publishedAt: '2026-01-01T00:00:00.000Z', builder: 'local:test', trusted: true };
let work: string;
let store: FsBlobStore;

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'local-verified-'));
  mkdirSync(join(work, 'store'));
  store = new FsBlobStore(parseStoreUrl(pathToFileURL(join(work, 'store')).href) as Extract<ReturnType<typeof parseStoreUrl>, { kind: 'file' }>);
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

async function publish(version: string, marker: string): Promise<{ manifest: Manifest; tarball: Buffer }> {
  const dir = join(work, `build-${version}-${marker}`);
  mkdirSync(dir, { recursive: true });
  const tarball = join(dir, 'app.tar.gz');
  await writeDeterministicTarGz([{ name: 'main.js', bytes: Buffer.from(`console.log('${marker}')\n`) }], tarball);
  const manifest = await publishTestFile({ store, project: 'app', version, dir, file: 'app.tar.gz', kind: 'node-tarball', metadata });
  return { manifest, tarball: readFileSync(tarball) };
}

/** Replaces a stored object (the store is create-only, so: delete, then create). */
async function overwrite(key: string, bytes: Buffer): Promise<void> {
  await store.delete(key);
  await store.putBytesIfAbsent(key, bytes);
}

type Tamper = (ctx: { good: { manifest: Manifest; tarball: Buffer }; evil: { manifest: Manifest; tarball: Buffer } }) => Promise<void>;
const fileKey = artifactKey('app' as ProjectName, '101' as Version, 'app.tar.gz');
const manifestKey = storedManifestKey('app' as ProjectName, '101' as Version);
const evilStored = (evil: Manifest): Buffer => Buffer.from(serializeManifest({ manifest: { ...evil, version: '101' }, publish: metadata } as StoredManifest));

// every way the store can change between the check and the deploy (bytes, manifest, both, removal)
const TAMPERS: [string, Tamper, 'refused' | 'verified-bytes'][] = [
  ['bytes swapped', async ({ evil }) => overwrite(fileKey, evil.tarball), 'refused'],
  [
    'bytes and manifest swapped consistently',
    async ({ evil }) => {
      await overwrite(fileKey, evil.tarball);
      await overwrite(manifestKey, evilStored(evil.manifest));
    },
    'refused',
  ],
  ['bytes truncated', async ({ good }) => overwrite(fileKey, good.tarball.subarray(0, good.tarball.length - 1)), 'refused'],
  ['manifest swapped (bytes intact)', async ({ evil }) => overwrite(manifestKey, evilStored(evil.manifest)), 'verified-bytes'],
  ['manifest deleted', async () => store.delete(manifestKey), 'verified-bytes'],
  ['nothing', async () => undefined, 'verified-bytes'],
];

describe('the local target installs exactly the verified manifest and bytes', () => {
  it.each(TAMPERS)('store changed after the check: %s', async (_name, tamper, outcome) => {
    const good = await publish('101', 'verified');
    const evil = await publish('999', 'swapped');
    const stored = await verifyArtifact(store, 'app' as ProjectName, '101' as Version);
    await tamper({ good, evil });

    // the deploy never reads the manifest from the store again
    const manifestReads: string[] = [];
    const watched: BlobStore = Object.create(store);
    watched.getBytes = (key) => {
      if (key.endsWith('manifest.json')) manifestReads.push(key);
      return store.getBytes(key);
    };
    const lines: string[] = [];
    const target = createDeployTarget({
      kind: 'local',
      options: { target: 'local', localRoot: join(work, 'deploy') },
      workspaceRoot: work,
      aws: unusedAwsClients(),
    });
    const req: DeployRequest = {
      project: 'app' as ProjectName,
      environment: 'dev' as EnvironmentName,
      version: '101' as Version,
      namespace: 'trusted',
      stored,
      store: watched,
      log: (l) => lines.push(l),
    };
    const root = join(work, 'deploy', 'dev', 'app');
    const result = await target.deploy(req).then(
      (r) => r,
      (e: unknown) => e,
    );
    expect(manifestReads).toEqual([]);
    if (outcome === 'refused') {
      expect(result).toBeInstanceOf(DeployError);
      expect((result as Error).message).toMatch(/does not match its manifest/);
      expect(existsSync(join(root, 'current'))).toBe(false);
      expect(existsSync(join(root, 'releases', '101'))).toBe(false);
    } else {
      expect(result).toMatchObject({ target: 'local', status: 'deployed' });
      expect(readlinkSync(join(root, 'current'))).toBe('releases/101');
      expect(readFileSync(join(root, 'current', 'main.js'), 'utf8')).toBe("console.log('verified')\n");
      expect(readFileSync(join(root, 'current', '.buildonce', 'manifest.json'), 'utf8')).toBe(serializeManifest(stored));
    }
  });
});
