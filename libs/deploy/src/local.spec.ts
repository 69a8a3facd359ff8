import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256File, writeDeterministicTarGz, writeDeterministicZip, type Manifest } from '@buildonce/artifact';
import { ArtifactIntegrityError, ArtifactNotFoundError, FsBlobStore, artifactKey, parseStoreUrl } from '@buildonce/store';
import { benignArchives, hostileArchives, publishTestFile, rawTarGz } from '@buildonce/testing';
import { LocalDeployError, currentVersion, deployLocal, newestVersions } from './local';
import type { ProjectName, Version } from '@buildonce/values';

const metadata = { publishedAt: '2026-01-01T00:00:00.000Z', builder: 'local:test', trusted: true, commit: 'abc123' };

let store: FsBlobStore;
let work: string;
let root: string;

function newStore(): FsBlobStore {
  const dir = mkdtempSync(join(tmpdir(), 'deploy-store-'));
  return new FsBlobStore(parseStoreUrl(pathToFileURL(dir).href) as Extract<ReturnType<typeof parseStoreUrl>, { kind: 'file' }>);
}

/** Builds and publishes a node-tarball version whose main.js prints its marker. */
async function publishTarball(version: string, extra: { name: string; bytes: Buffer }[] = []): Promise<Manifest> {
  const dir = join(work, `build-${version}`);
  mkdirSync(dir, { recursive: true });
  const tarball = join(dir, 'app-deployment.tar.gz');
  await writeDeterministicTarGz(
    [
      { name: 'main.js', bytes: Buffer.from(`console.log('release ${version}')\n`) },
      { name: 'buildonce.json', bytes: Buffer.from(JSON.stringify({ project: 'app', version }) + '\n') },
      ...extra,
    ],
    tarball,
  );
  return publishTestFile({ store, project: 'app', version, dir, file: 'app-deployment.tar.gz', kind: 'node-tarball', metadata });
}

beforeEach(() => {
  store = newStore();
  work = mkdtempSync(join(tmpdir(), 'deploy-work-'));
  root = join(work, 'install');
});

afterEach(() => {
  rmSync(work, { recursive: true, force: true });
  rmSync(store.root, { recursive: true, force: true });
});

describe('deployLocal', () => {
  it('verifies, unpacks into releases/<version>, writes the stored manifest and points current at it', async () => {
    await publishTarball('101');
    const lines: string[] = [];
    const r = await deployLocal({ store, project: 'app' as ProjectName, version: '101' as Version, root, log: (l) => lines.push(l) });
    expect(r).toMatchObject({ status: 'deployed', version: '101', path: join(root, 'releases/101'), previousVersion: null });
    expect(readlinkSync(join(root, 'current'))).toBe('releases/101');
    expect(readFileSync(join(root, 'current/main.js'), 'utf8')).toBe("console.log('release 101')\n");
    const storedBytes = readFileSync(join(store.root, 'artifacts/app/101/manifest.json'));
    expect(readFileSync(join(root, 'releases/101/.buildonce/manifest.json')).equals(storedBytes)).toBe(true);
    expect(readdirSync(join(root, '.incoming'))).toEqual([]);
    expect(readdirSync(join(root, 'releases'))).toEqual(['101']);
    expect(lines.some((l) => l.startsWith('[app] verified app-deployment.tar.gz'))).toBe(true);
    expect(await currentVersion(root)).toBe('101');
  });

  it('is already-current the second time and moves current with previousVersion on a new version', async () => {
    await publishTarball('101');
    await publishTarball('102');
    await deployLocal({ store, project: 'app' as ProjectName, version: '101' as Version, root });
    const again = await deployLocal({ store, project: 'app' as ProjectName, version: '101' as Version, root });
    expect(again).toMatchObject({ status: 'already-current', previousVersion: '101' });
    const next = await deployLocal({ store, project: 'app' as ProjectName, version: '102' as Version, root });
    expect(next).toMatchObject({ status: 'deployed', previousVersion: '101' });
    expect(readlinkSync(join(root, 'current'))).toBe('releases/102');
    // rolling back to an unpacked release reuses it
    const back = await deployLocal({ store, project: 'app' as ProjectName, version: '101' as Version, root });
    expect(back).toMatchObject({ status: 'deployed', previousVersion: '102' });
    expect(readlinkSync(join(root, 'current'))).toBe('releases/101');
  });

  it('a tampered object (same size, other bytes) fails and leaves current and releases untouched', async () => {
    await publishTarball('101');
    const m = await publishTarball('102');
    await deployLocal({ store, project: 'app' as ProjectName, version: '101' as Version, root });
    const path = join(store.root, artifactKey('app' as ProjectName, '102' as Version, 'app-deployment.tar.gz'));
    const bytes = readFileSync(path);
    bytes[bytes.length - 1] ^= 0xff;
    writeFileSync(path, bytes);
    await expect(deployLocal({ store, project: 'app' as ProjectName, version: '102' as Version, root })).rejects.toThrow(ArtifactIntegrityError);
    await expect(deployLocal({ store, project: 'app' as ProjectName, version: '102' as Version, root })).rejects.toThrow(
      new RegExp(`expected ${m.files[0]!.size} bytes sha256 ${m.files[0]!.sha256}; nothing was changed`),
    );
    expect(readlinkSync(join(root, 'current'))).toBe('releases/101');
    expect(readdirSync(join(root, 'releases'))).toEqual(['101']);
    expect(readdirSync(join(root, '.incoming'))).toEqual([]);
  });

  it('a tampered current version is still refused (always verifies)', async () => {
    await publishTarball('101');
    await deployLocal({ store, project: 'app' as ProjectName, version: '101' as Version, root });
    const path = join(store.root, artifactKey('app' as ProjectName, '101' as Version, 'app-deployment.tar.gz'));
    writeFileSync(path, Buffer.concat([readFileSync(path), Buffer.from('x')]));
    await expect(deployLocal({ store, project: 'app' as ProjectName, version: '101' as Version, root })).rejects.toThrow(/does not match its manifest/);
    expect(readlinkSync(join(root, 'current'))).toBe('releases/101');
  });

  it('a version that is not published fails listing the newest versions', async () => {
    await publishTarball('101');
    await publishTarball('102');
    const err = await deployLocal({ store, project: 'app' as ProjectName, version: '999' as Version, root }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArtifactNotFoundError);
    expect((err as Error).message).toMatch(/version 999 is not published .*newest versions: 10[12] \(.*\), 10[12] \(/);
    expect(existsSync(join(root, 'current'))).toBe(false);
    expect((await newestVersions(store, 'app' as ProjectName)).map((v) => v.version).sort()).toEqual(['101', '102']);
    expect(await newestVersions(store, 'nothing' as ProjectName)).toEqual([]);
  });

  it('keeps a lambda-zip as-is next to its manifest', async () => {
    const dir = join(work, 'zip');
    mkdirSync(dir);
    await writeDeterministicZip([{ name: 'bootstrap', bytes: Buffer.from('#!/bin/true') }], join(dir, 'bootstrap.zip'));
    const manifest = await publishTestFile({
      store,
      project: 'fn',
      version: '7',
      dir,
      file: 'bootstrap.zip',
      kind: 'lambda-zip',
      handler: 'bootstrap',
      metadata,
    });
    const r = await deployLocal({ store, project: 'fn' as ProjectName, version: '7' as Version, root });
    expect(r.status).toBe('deployed');
    expect(readdirSync(join(root, 'releases/7')).sort()).toEqual(['.buildonce', 'bootstrap.zip']);
    expect((await sha256File(join(root, 'current/bootstrap.zip'))).hex).toBe(manifest.files[0]!.sha256);
  });

  it('refuses a root whose current is a real directory, and artifacts that ship .buildonce/', async () => {
    await publishTarball('101');
    mkdirSync(join(root, 'current'), { recursive: true });
    await expect(deployLocal({ store, project: 'app' as ProjectName, version: '101' as Version, root })).rejects.toThrow(LocalDeployError);
    const other = join(work, 'other');
    await publishTarball('103', [{ name: '.buildonce/manifest.json', bytes: Buffer.from('{}') }]);
    await expect(deployLocal({ store, project: 'app' as ProjectName, version: '103' as Version, root: other })).rejects.toThrow(/reserve/);
    expect(existsSync(join(other, 'releases/103'))).toBe(false);
    // versions are parsed at the edge; one forged past it still deploys nothing
    await expect(deployLocal({ store, project: 'app' as ProjectName, version: 'abc' as Version, root })).rejects.toThrow(/is not published/);
  });

  it('concurrent deploys of two versions both finish; current names one complete release', async () => {
    await publishTarball('101');
    await publishTarball('102');
    const rs = await Promise.all([
      deployLocal({ store, project: 'app' as ProjectName, version: '101' as Version, root }),
      deployLocal({ store, project: 'app' as ProjectName, version: '102' as Version, root }),
      deployLocal({ store, project: 'app' as ProjectName, version: '101' as Version, root }),
    ]);
    expect(rs.every((r) => r.status === 'deployed' || r.status === 'already-current')).toBe(true);
    const v = await currentVersion(root);
    expect(['101', '102']).toContain(v);
    expect(readFileSync(join(root, 'current/main.js'), 'utf8')).toBe(`console.log('release ${v}')\n`);
    expect(readdirSync(join(root, 'releases')).sort()).toEqual(['101', '102']);
  });
});

/** Publishes hand-made tarball bytes as a node-tarball version of `app`. */
async function publishRawTarball(version: string, bytes: Buffer): Promise<void> {
  const dir = join(work, `raw-${version}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'app-deployment.tar.gz'), bytes);
  await publishTestFile({ store, project: 'app', version, dir, file: 'app-deployment.tar.gz', kind: 'node-tarball', metadata });
}

describe('deployLocal and the hostile-archive corpus', () => {
  it('refuses every hostile archive with the reason, writes nothing and leaves no temp files', async () => {
    const corpus = hostileArchives();
    for (const [i, a] of corpus.entries()) {
      const version = String(1000 + i);
      await publishRawTarball(version, rawTarGz(a.entries));
      const err = await deployLocal({ store, project: 'app' as ProjectName, version: version as Version, root }).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err, a.name).toBeInstanceOf(LocalDeployError);
      expect(err!.message, a.name).toMatch(new RegExp(`^\\[app\\] app@${version}: refused app-deployment\\.tar\\.gz: .+; nothing was changed$`));
      expect(err!.message.split('\n'), a.name).toHaveLength(1);
      expect(readdirSync(join(root, 'releases')), a.name).toEqual([]);
      expect(readdirSync(join(root, '.incoming')), a.name).toEqual([]);
      expect(existsSync(join(root, 'current')), a.name).toBe(false);
    }
    expect(existsSync('/tmp/buildonce-pwned')).toBe(false);
    expect(existsSync(join(work, 'buildonce-pwned'))).toBe(false);
  });

  it('names the refused entry: esc -> /etc plus 300 files stops at esc', async () => {
    const a = hostileArchives().find((h) => h.name === 'absolute-symlink-dir')!;
    await publishRawTarball('77', rawTarGz(a.entries));
    await expect(deployLocal({ store, project: 'app' as ProjectName, version: '77' as Version, root })).rejects.toThrow(
      /symlink "esc" -> "\/etc" is absolute: it points outside the release/,
    );
    expect(readdirSync(join(root, 'releases'))).toEqual([]);
  });

  it('accepts the benign controls (inside symlinks, long legal names)', async () => {
    for (const [i, a] of benignArchives().entries()) {
      const version = String(2000 + i);
      await publishRawTarball(version, rawTarGz(a.entries));
      const r = await deployLocal({ store, project: 'app' as ProjectName, version: version as Version, root });
      expect(r.status, a.name).toBe('deployed');
    }
    expect(readlinkSync(join(root, 'releases', '2000', 'lib', 'current'))).toBe('v1');
  });
});
