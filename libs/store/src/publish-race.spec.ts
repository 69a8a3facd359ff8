import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir, writeTestArtifactDir } from '@buildonce/testing';
import {
  artifactKey,
  openStore,
  parseStoreUrl,
  publishArtifact,
  publishMetadataFromEnv,
  storedManifestKey,
  verifyArtifact,
  versionPrefix,
  type BlobStore,
} from './index';
import { isPublishLease } from './artifacts';
import { BuildonceError } from '@buildonce/errors';
import type { ProjectName, Version } from '@buildonce/values';

afterAll(removeTempDirs);

/**
 * A store whose `at`-th request (any method) is preceded by what a retention run that listed (and
 * checked for leases) before the publish started does to the version: delete the manifest, then every
 * other object of the version except leases it did not see. Every interleaving point of a publish is tried.
 */
function racingStore(inner: BlobStore, project: string, version: string, at: number): BlobStore & { fired: boolean } {
  let n = 0;
  const s = Object.create(inner) as BlobStore & { fired: boolean };
  s.fired = false;
  const before = async (m: string, key: unknown) => {
    // the lease delete comes after publish's final check: a deletion then is retention running after the publish
    if (m === 'delete' && typeof key === 'string' && isPublishLease(key.split('/').pop()!)) return;
    if (++n !== at) return;
    s.fired = true;
    await inner.delete(storedManifestKey(project as ProjectName, version as Version));
    for await (const o of inner.list(versionPrefix(project as ProjectName, version as Version)))
      if (!isPublishLease(o.key.split('/').pop()!)) await inner.delete(o.key);
  };
  for (const m of ['putFileIfAbsent', 'putBytesIfAbsent', 'putBytesIfMatch', 'head', 'getBytes', 'getStream', 'delete'] as const) {
    const f = (inner[m] as (...a: unknown[]) => Promise<unknown>).bind(inner);
    (s as unknown as Record<string, unknown>)[m] = async (...a: unknown[]) => {
      await before(m, a[0]);
      return f(...a);
    };
  }
  return s;
}

describe('publish against files deleted at any point (file store)', () => {
  const files = { 'bootstrap.zip': randomBytes(1500), 'extra.bin': randomBytes(300) };
  const { dir, manifest } = writeTestArtifactDir('race', '77', files);
  const metadata = publishMetadataFromEnv({});
  // starting states: nothing stored, files without a manifest (an incomplete earlier publish), complete but a file lost
  const starts: [string, (s: BlobStore) => Promise<void>][] = [
    ['empty', async () => undefined],
    [
      'incomplete',
      async (s) =>
        void (await s.putFileIfAbsent(artifactKey('race' as ProjectName, '77' as Version, 'bootstrap.zip'), join(dir, 'bootstrap.zip'), {
          sha256Hex: manifest.files[0]!.sha256,
          size: 1500,
        })),
    ],
    [
      'file lost',
      async (s) => {
        await publishArtifact({ store: s, manifest, dir, metadata });
        await s.delete(artifactKey('race' as ProjectName, '77' as Version, 'extra.bin'));
      },
    ],
  ];

  it.each(starts)('from "%s": success always means a complete version, else one clear error', async (_name, start) => {
    let fired = 0;
    for (let at = 1; at <= 40; at++) {
      const inner = openStore(parseStoreUrl(`file://${tempDir('race-store-')}`));
      await start(inner);
      const store = racingStore(inner, 'race', '77', at);
      const r = await publishArtifact({ store, manifest, dir, metadata }).then(
        (x) => x,
        (e: Error) => e,
      );
      if (store.fired) fired++;
      if (r instanceof Error) {
        expect(r, `at ${at}: ${r.stack}`).toBeInstanceOf(BuildonceError);
        expect(r.message).not.toContain('\n');
      } else {
        expect(['published', 'already-published', 'repaired'], `at ${at}`).toContain(r.status);
        await expect(verifyArtifact(inner, 'race' as ProjectName, '77' as Version), `at ${at}: ${r.status}`).resolves.toBeDefined();
      }
    }
    expect(fired).toBeGreaterThan(5);
  });
});
