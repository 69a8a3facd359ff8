import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, statSync, utimesSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256File } from '@buildonce/artifact';
import { makeTempWorkspace, startMoto, type MotoServer, type TempWorkspace } from '@buildonce/testing';

/**
 * End to end through the real nx CLI in temp git workspaces: build rust-scorer with real cargo,
 * publish to the embedded store and to S3 (moto_server), reproducibility across clones, and the
 * one-line errors of bad input.
 */
const cargoEnv = { BUILDONCE_CARGO_OFFLINE_REGISTRY: process.env.BUILDONCE_CARGO_OFFLINE_REGISTRY ?? '/usr/share/cargo/registry' };
let moto: MotoServer;
let a: TempWorkspace;
let b: TempWorkspace;
let cacheA: string;
let cacheB: string;
const bucket = 'publish-it';

function nx(ws: TempWorkspace, cache: string, args: string[], env: Record<string, string | undefined> = {}) {
  return ws.runResult('npx', ['nx', ...args, '--output-style=stream'], { ...cargoEnv, NX_CACHE_DIRECTORY: cache, BUILDONCE_STORE: undefined, ...env });
}

function touchAll(dir: string, when: Date) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === '.git') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) touchAll(p, when);
    utimesSync(p, when, when);
  }
}

beforeAll(async () => {
  moto = await startMoto();
  await moto.createBucket(bucket);
  a = makeTempWorkspace('buildonce-pub-a-');
  b = makeTempWorkspace('buildonce-pub-bb-');
  cacheA = mkdtempSync(join(tmpdir(), 'nxcache-a-'));
  cacheB = mkdtempSync(join(tmpdir(), 'nxcache-b-'));
});

afterAll(async () => {
  await moto?.stop();
  a?.dispose();
  b?.dispose();
  rmSync(cacheA, { recursive: true, force: true });
  rmSync(cacheB, { recursive: true, force: true });
});

describe('nx run rust-scorer:publish', () => {
  let version = '';

  it('publishes bootstrap.zip and manifest.json to the embedded store, then is a no-op', () => {
    const first = nx(a, cacheA, ['run', 'rust-scorer:publish']);
    expect(first.status, first.stdout + first.stderr).toBe(0);
    version = JSON.parse(readFileSync(join(a.root, 'dist/apps/rust-scorer/artifact.json'), 'utf8')).version;
    expect(version).toMatch(/^\d+$/);
    const dir = join(a.root, '.buildonce/store/artifacts/rust-scorer', version);
    expect(readdirSync(dir).sort()).toEqual(['bootstrap.zip', 'manifest.json']);
    expect(first.stdout).toContain(`published version ${version}`);
    const mtime = statSync(join(dir, 'bootstrap.zip')).mtimeMs;

    const second = nx(a, cacheA, ['run', 'rust-scorer:publish']);
    expect(second.status, second.stdout + second.stderr).toBe(0);
    expect(second.stdout).toContain(`version ${version} is already published`);
    // the build is a cache hit: Nx replays its terminal output but runs no cargo
    expect(second.stdout).toMatch(/nx run rust-scorer:build\s+\[(local cache|existing outputs match the cache, left as is)\]/);
    expect(statSync(join(dir, 'bootstrap.zip')).mtimeMs).toBe(mtime);
  });

  it('two clones at different paths with different mtimes build identical bytes and version', async () => {
    touchAll(join(a.root, 'apps'), new Date('2021-03-04T05:06:07Z'));
    touchAll(join(b.root, 'apps'), new Date('2025-10-11T12:13:14Z'));
    const ra = nx(a, cacheA, ['run', 'rust-scorer:build', '--skip-nx-cache']);
    const rb = nx(b, cacheB, ['run', 'rust-scorer:build', '--skip-nx-cache']);
    expect(ra.status, ra.stderr).toBe(0);
    expect(rb.status, rb.stderr).toBe(0);
    const ma = JSON.parse(readFileSync(join(a.root, 'dist/apps/rust-scorer/artifact.json'), 'utf8'));
    const mb = JSON.parse(readFileSync(join(b.root, 'dist/apps/rust-scorer/artifact.json'), 'utf8'));
    expect(mb.version).toBe(ma.version);
    expect(ma.version).toBe(version);
    // rust-scorer is arm64 (Graviton) and within AL2023's glibc
    expect(ma).toMatchObject({ architecture: 'arm64', runtime: 'provided.al2023' });
    expect(Number(ma.glibcMax.split('.')[1])).toBeLessThanOrEqual(34);
    // the identity Nx hashes (runtime input, run without the node directory Nx puts first in task PATHs)
    // names the toolchain the build task used
    const identity = JSON.parse(
      a.run('node', [
        'tools/scripts/rust-toolchain.mjs',
        '--cargo-dir',
        'apps/rust-scorer',
        '--architecture',
        'arm64',
        '--runtime',
        'provided.al2023',
        '--json',
      ]),
    );
    expect(ma.toolchain).toBe(identity.summary);
    const za = await sha256File(join(a.root, 'dist/apps/rust-scorer/bootstrap.zip'));
    const zb = await sha256File(join(b.root, 'dist/apps/rust-scorer/bootstrap.zip'));
    expect(zb.hex).toBe(za.hex);
    expect(ma.files[0].sha256).toBe(za.hex);
  });

  it('publishes to S3 with BUILDONCE_STORE and the object carries the manifest sha256', () => {
    const r = nx(a, cacheA, ['run', 'rust-scorer:publish'], { ...moto.env, BUILDONCE_STORE: `s3://${bucket}/team` });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`s3://${bucket}/team/artifacts/rust-scorer/${version}/`);
    const head = JSON.parse(
      execFileSync(
        'aws',
        [
          's3api',
          'head-object',
          '--bucket',
          bucket,
          '--key',
          `team/artifacts/rust-scorer/${version}/bootstrap.zip`,
          '--checksum-mode',
          'ENABLED',
          '--endpoint-url',
          moto.endpoint,
        ],
        {
          env: { ...process.env, ...moto.env },
          encoding: 'utf8',
        },
      ),
    );
    const manifest = JSON.parse(readFileSync(join(a.root, 'dist/apps/rust-scorer/artifact.json'), 'utf8'));
    expect(Buffer.from(head.ChecksumSHA256, 'base64').toString('hex')).toBe(manifest.files[0].sha256);
    const again = nx(a, cacheA, ['run', 'rust-scorer:publish'], { ...moto.env, BUILDONCE_STORE: `s3://${bucket}/team` });
    expect(again.stdout).toContain('already published');
  });

  it('writes artifact_uri and version to $GITHUB_OUTPUT', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'gho-')), 'out');
    const r = nx(a, cacheA, ['run', 'rust-scorer:publish'], { GITHUB_OUTPUT: out });
    expect(r.status).toBe(0);
    const text = readFileSync(out, 'utf8');
    expect(text).toContain(`version=${version}\n`);
    expect(text).toMatch(/^artifact_uri=file:\/\/.*\/artifacts\/rust-scorer\/\d+\/$/m);
  });

  it('--dry-run says what it would upload and writes nothing', () => {
    const store = mkdtempSync(join(tmpdir(), 'dry-'));
    const r = nx(a, cacheA, ['run', 'rust-scorer:publish', '--dryRun'], { BUILDONCE_STORE: `file://${store}` });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/dry run: would upload .*bootstrap\.zip/);
    expect(readdirSync(store)).toEqual([]);
  });

  const oneLineFailure = (r: { status: number; stdout: string; stderr: string }, pattern: RegExp) => {
    expect(r.status).not.toBe(0);
    const line = (r.stdout + r.stderr).split('\n').find((l) => pattern.test(l));
    expect(line, r.stdout + r.stderr).toBeTruthy();
    expect(line).toMatch(/^(rust-scorer: )?\[rust-scorer\] /);
  };

  it('a malformed store URL is a one-line error', () => {
    oneLineFailure(nx(a, cacheA, ['run', 'rust-scorer:publish'], { BUILDONCE_STORE: 'gs://bucket/x' }), /store URL "gs:\/\/bucket\/x" is not supported/);
  });

  it('a missing bucket is a one-line error', () => {
    oneLineFailure(
      nx(a, cacheA, ['run', 'rust-scorer:publish'], { ...moto.env, BUILDONCE_STORE: 's3://no-such-bucket/x' }),
      /bucket "no-such-bucket" does not exist/,
    );
  });

  it('missing credentials are a one-line error', () => {
    const env = {
      ...moto.env,
      AWS_ACCESS_KEY_ID: undefined,
      AWS_SECRET_ACCESS_KEY: undefined,
      AWS_PROFILE: undefined,
      AWS_CONFIG_FILE: '/nonexistent',
      AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
      BUILDONCE_STORE: `s3://${bucket}/x`,
    };
    oneLineFailure(nx(a, cacheA, ['run', 'rust-scorer:publish'], env), /no AWS credentials/);
  });

  it('different bytes under a published version fail with ArtifactConflictError and change nothing', async () => {
    const out = join(a.root, 'dist/apps/rust-scorer');
    const storedZip = join(a.root, '.buildonce/store/artifacts/rust-scorer', version, 'bootstrap.zip');
    const before = (await sha256File(storedZip)).hex;
    const evil = Buffer.from('not the bytes that were published');
    writeFileSync(join(out, 'bootstrap.zip'), evil);
    const manifest = JSON.parse(readFileSync(join(out, 'artifact.json'), 'utf8'));
    manifest.files[0] = { name: 'bootstrap.zip', size: evil.length, sha256: createHash('sha256').update(evil).digest('hex') };
    writeFileSync(join(out, 'artifact.json'), JSON.stringify(manifest));
    oneLineFailure(
      nx(a, cacheA, ['run', 'rust-scorer:publish', '--exclude-task-dependencies']),
      /ArtifactConflictError: .*bootstrap\.zip already exists with sha256/,
    );
    expect((await sha256File(storedZip)).hex).toBe(before);
  });

  it('a missing build output is a one-line error', () => {
    rmSync(join(a.root, 'dist'), { recursive: true, force: true });
    oneLineFailure(
      nx(a, cacheA, ['run', 'rust-scorer:publish', '--exclude-task-dependencies']),
      /build manifest .* is missing: run nx run rust-scorer:build first/,
    );
    expect(existsSync(join(a.root, 'dist'))).toBe(false);
  });
});
