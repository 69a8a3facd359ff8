import { appendFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractTarGz, listTarGz, parseStoredManifestJson, sha256File, TAR_EPOCH } from '@buildonce/artifact';
import { EXPRESS_API_TARBALL, freePort, makeCachedWorkspace, type CachedWorkspace, type TempWorkspace } from '@buildonce/testing';
import { nodeModulesAbove, nx, spawnCollect, stop, touchAll, waitForHealth } from './helpers';

/**
 * Through the real nx CLI in temp git workspaces: package + publish express-api to the embedded
 * store, boot the published tarball with plain node in an empty directory, and rebuild it in a
 * second clone at another path with other mtimes to get the same sha256.
 */
const dist = 'dist/apps/express-api';
let a: CachedWorkspace;
let b: CachedWorkspace;
let version = '';
let sha256 = '';
let bootDir = '';

beforeAll(() => {
  a = makeCachedWorkspace('buildonce-api-a-');
  b = makeCachedWorkspace('buildonce-api-b-longer-path-');
});

afterAll(() => {
  a?.dispose();
  b?.dispose();
  if (bootDir) rmSync(bootDir, { recursive: true, force: true });
});

const readManifest = (ws: TempWorkspace) =>
  JSON.parse(readFileSync(join(ws.root, dist, 'artifact.json'), 'utf8')) as { version: string; files: { name: string; sha256: string; size: number }[] };

describe('nx run express-api:publish (embedded store)', () => {
  it('packages once and publishes the tarball and manifest; the second run is a no-op with a build cache hit', () => {
    const first = nx(a, ['run', 'express-api:publish'], { GITHUB_SHA: 'c0ffee0000000000000000000000000000000001' });
    expect(first.status, first.stdout + first.stderr).toBe(0);
    const m = readManifest(a);
    version = m.version;
    sha256 = m.files[0]!.sha256;
    expect(version).toMatch(/^\d+$/);
    expect(m.files.map((f) => f.name)).toEqual([EXPRESS_API_TARBALL]);
    expect(first.stdout).toContain(`[express-api] esbuild apps/express-api/src/main.ts`);
    expect(first.stdout).toContain(`published version ${version}`);
    const dir = join(a.root, '.buildonce/store/artifacts/express-api', version);
    expect(readdirSync(dir).sort()).toEqual([EXPRESS_API_TARBALL, 'manifest.json']);

    const second = nx(a, ['run', 'express-api:publish']);
    expect(second.status, second.stdout + second.stderr).toBe(0);
    expect(second.stdout).toContain(`version ${version} is already published`);
    // the build is a cache hit: Nx replays its output, esbuild does not run
    expect(second.stdout).toMatch(/nx run express-api:build\s+\[(local cache|existing outputs match the cache, left as is)\]/);

    const pkg = nx(a, ['run', 'express-api:package']);
    expect(pkg.status, pkg.stdout + pkg.stderr).toBe(0);
    expect(readManifest(a).version).toBe(version);
  });

  it('the published tarball is deterministic on the inside: sorted, fixed mtime, uid/gid 0, no owner names, clean gzip header', async () => {
    const tarball = join(a.root, '.buildonce/store/artifacts/express-api', version, EXPRESS_API_TARBALL);
    const head = readFileSync(tarball).subarray(0, 10);
    expect(head[3]).toBe(0);
    expect(head.readUInt32LE(4)).toBe(0);
    expect(head[9]).toBe(3);
    const entries = await listTarGz(tarball);
    expect(entries.map((e) => e.path)).toEqual(['artifact-info.json', 'main.js', 'main.js.map', 'package.json']);
    for (const e of entries) expect(e).toMatchObject({ uid: 0, gid: 0, uname: '', gname: '', mode: 0o644, mtime: TAR_EPOCH.getTime() / 1000 });
  });

  it('boots from the published tarball in an empty directory with no node_modules anywhere above it', async () => {
    const storedDir = join(a.root, '.buildonce/store/artifacts/express-api', version);
    const stored = parseStoredManifestJson(readFileSync(join(storedDir, 'manifest.json'), 'utf8'));
    expect(stored.manifest.kind).toBe('node-tarball');
    expect((await sha256File(join(storedDir, EXPRESS_API_TARBALL))).hex).toBe(stored.manifest.files[0]!.sha256);

    const dir = (bootDir = mkdtempSync(join(tmpdir(), 'api-boot-')));
    expect(nodeModulesAbove(dir)).toEqual([]);
    await extractTarGz(join(storedDir, EXPRESS_API_TARBALL), dir);
    expect(readdirSync(dir).sort()).toEqual(['artifact-info.json', 'main.js', 'main.js.map', 'package.json']);
    const pkgText = readFileSync(join(dir, 'package.json'), 'utf8');
    expect(pkgText).not.toMatch(/workspace:|file:|link:/);
    expect(JSON.parse(pkgText)).not.toHaveProperty('dependencies');
    const info = JSON.parse(readFileSync(join(dir, 'artifact-info.json'), 'utf8')) as { version: string; bundled: { name: string; version: string }[] };
    expect(info.version).toBe(stored.manifest.version);
    expect(info.bundled.find((p) => p.name === 'express')?.version).toBe('5.3.0');
    expect(info.bundled.find((p) => p.name === 'pino')?.version).toBe('10.4.0');

    const port = await freePort();
    // no registry, no NODE_PATH, no workspace: only node, PORT and the extracted files
    const env = { PATH: process.env.PATH, PORT: String(port), HOME: dir, npm_config_offline: 'true' };
    const proc = spawnCollect(process.execPath, ['main.js'], { cwd: dir, env });
    try {
      const { body } = await waitForHealth(`http://127.0.0.1:${port}/health`, proc);
      expect(body).toEqual({ status: 'ok', version: stored.manifest.version, commit: null });
      const sum = await fetch(`http://127.0.0.1:${port}/v1/sha256`, { method: 'POST', body: 'abc' }).then((r) => r.json());
      expect(sum).toMatchObject({ sha256: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad' });
    } finally {
      expect(await stop(proc)).toBe(0);
    }
    const lines = proc
      .stdout()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; version?: string });
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['listening', 'request', 'shutting down', 'stopped']));
    expect(lines.every((l) => l.version === version)).toBe(true);
    expect(existsSync(join(dir, 'node_modules'))).toBe(false);
  });
});

describe('reproducibility and version precision', () => {
  it('two clones at different paths with different mtimes build the same version and sha256', async () => {
    touchAll(join(a.root, 'apps'), new Date('2021-03-04T05:06:07Z'));
    touchAll(join(a.root, 'libs'), new Date('2021-03-04T05:06:07Z'));
    touchAll(join(b.root, 'apps'), new Date('2025-10-11T12:13:14Z'));
    touchAll(join(b.root, 'libs'), new Date('2025-10-11T12:13:14Z'));
    const ra = nx(a, ['run', 'express-api:build', '--skip-nx-cache']);
    const rb = nx(b, ['run', 'express-api:build', '--skip-nx-cache']);
    expect(ra.status, ra.stdout + ra.stderr).toBe(0);
    expect(rb.status, rb.stdout + rb.stderr).toBe(0);
    const ma = readManifest(a);
    const mb = readManifest(b);
    expect(ma.version).toBe(version);
    expect(mb.version).toBe(version);
    const ha = (await sha256File(join(a.root, dist, EXPRESS_API_TARBALL))).hex;
    const hb = (await sha256File(join(b.root, dist, EXPRESS_API_TARBALL))).hex;
    expect(hb).toBe(ha);
    expect(ha).toBe(sha256);
  });

  it('files outside the build inputs do not change the version; a library source does', () => {
    appendFileSync(join(b.root, 'apps/express-api/deploy/user-data.sh'), '# comment\n');
    appendFileSync(join(b.root, 'apps/express-api/src/app.spec.ts'), '// comment\n');
    const same = nx(b, ['run', 'express-api:build']);
    expect(same.status, same.stdout + same.stderr).toBe(0);
    expect(readManifest(b).version).toBe(version);

    appendFileSync(join(b.root, 'libs/artifact/src/manifest.ts'), '// comment\n');
    const changed = nx(b, ['run', 'express-api:build']);
    expect(changed.status, changed.stdout + changed.stderr).toBe(0);
    expect(readManifest(b).version).not.toBe(version);
  });
});
