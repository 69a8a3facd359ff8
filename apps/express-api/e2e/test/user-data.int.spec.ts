import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseStoredManifestJson, type StoredManifest } from '@buildonce/artifact';
import { deployLocal } from '@buildonce/deploy';
import { S3BlobStore, parseStoreUrl } from '@buildonce/store';
import { EXPRESS_API_TARBALL, EXPRESS_API_USER_DATA, freePort, makeCachedWorkspace, type CachedWorkspace } from '@buildonce/testing';
import { useMotoBucket } from '@buildonce/testing/src/moto-hooks';
import { nx, spawnCollect, stop, waitForHealth, type Collected } from './helpers';
import type { ProjectName, Version } from '@buildonce/values';

/**
 * The EC2 boot path against moto_server (real S3 + SSM APIs on loopback) with temp install roots:
 * publish express-api to S3 through nx, then run user-data.sh like an instance would.
 */
const bucket = 'userdata-it';
const prefix = 'team';
const commit = 'feedface00000000000000000000000000000002';
const s3 = useMotoBucket(bucket);
let ws: CachedWorkspace;
let version = '';
let key = '';
let stored: StoredManifest;
let original: Buffer;
let firstServer: Collected | undefined;
let firstRoot = '';
let firstPort = 0;
/** every temp directory of this file lives under it (removed in afterAll) */
let base = '';

function aws(args: string[]): string {
  return execFileSync('aws', args, { env: { ...process.env, ...s3().moto.env }, encoding: 'utf8' });
}

function putObject(k: string, bytes: Buffer): void {
  const f = join(mkdtempSync(join(base, 'ud-obj-')), 'body');
  writeFileSync(f, bytes);
  aws(['s3api', 'put-object', '--bucket', bucket, '--key', k, '--body', f]);
}

/** Runs user-data.sh to completion (not --foreground). */
function userData(args: string[], env: Record<string, string | undefined>) {
  const r = spawnSync('bash', [EXPRESS_API_USER_DATA, ...args], {
    env: { ...process.env, ...s3().moto.env, DEPLOYMENT_BUCKET: undefined, DEPLOYMENT_KEY: undefined, BUILDONCE_ENV: undefined, ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'ud-'));
  ws = makeCachedWorkspace('buildonce-userdata-');
}, 300_000);

afterAll(async () => {
  if (firstServer) await stop(firstServer);
  ws?.dispose();
  if (base) rmSync(base, { recursive: true, force: true });
});

describe('express-api on S3 and the EC2 user data', () => {
  it('nx run express-api:publish publishes to S3 (BUILDONCE_STORE) with the manifest sha256 as the object checksum', () => {
    const r = nx(ws, ['run', 'express-api:publish'], { ...s3().moto.env, BUILDONCE_STORE: `s3://${bucket}/${prefix}`, GITHUB_SHA: commit });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const m = JSON.parse(readFileSync(join(ws.root, 'dist/apps/express-api/artifact.json'), 'utf8')) as { version: string; files: { sha256: string }[] };
    version = m.version;
    key = `${prefix}/artifacts/express-api/${version}/${EXPRESS_API_TARBALL}`;
    expect(r.stdout).toContain(`s3://${bucket}/${prefix}/artifacts/express-api/${version}/`);
    const head = JSON.parse(aws(['s3api', 'head-object', '--bucket', bucket, '--key', key, '--checksum-mode', 'ENABLED'])) as { ChecksumSHA256: string };
    expect(Buffer.from(head.ChecksumSHA256, 'base64').toString('hex')).toBe(m.files[0]!.sha256);
    const again = nx(ws, ['run', 'express-api:publish'], { ...s3().moto.env, BUILDONCE_STORE: `s3://${bucket}/${prefix}` });
    expect(again.stdout).toContain('already published');
    const manifestFile = join(mkdtempSync(join(base, 'ud-manifest-')), 'manifest.json');
    aws(['s3api', 'get-object', '--bucket', bucket, '--key', `${prefix}/artifacts/express-api/${version}/manifest.json`, manifestFile]);
    stored = parseStoredManifestJson(readFileSync(manifestFile, 'utf8'));
    expect(stored.publish.commit).toBe(commit);
    original = readFileSync(join(ws.root, 'dist/apps/express-api', EXPRESS_API_TARBALL));
  });

  it('boots the published version in the foreground: verify, unpack, flip, GET /health', async () => {
    firstRoot = mkdtempSync(join(base, 'ud-root-'));
    firstPort = await freePort();
    firstServer = spawnCollect('bash', [EXPRESS_API_USER_DATA, '--root', firstRoot, '--foreground'], {
      env: { ...process.env, ...s3().moto.env, PORT: String(firstPort), DEPLOYMENT_BUCKET: bucket, DEPLOYMENT_KEY: key },
    });
    const { body } = await waitForHealth(`http://127.0.0.1:${firstPort}/health`, firstServer, 60_000);
    expect(body).toEqual({ status: 'ok', version, commit });
    expect(readlinkSync(join(firstRoot, 'current'))).toBe(`releases/${version}`);
    expect(readdirSync(join(firstRoot, 'releases'))).toEqual([version]);
    const log = firstServer.stderr();
    for (const step of ['head-object', 'manifest:', 'verified', 'unpacked into', `current -> releases/${version} (previous: none)`, 'in the foreground']) {
      expect(log).toContain(step);
    }
    expect(
      log
        .split('\n')
        .filter(Boolean)
        .every((l) => / \[express-api\] /.test(l)),
    ).toBe(true);
    expect(readdirSync(join(firstRoot, '.incoming'))).toEqual([]);
  });

  it('a tampered object (same key and size, other bytes) exits 1; current and the running release are untouched', async () => {
    const tampered = Buffer.from(original);
    tampered[tampered.length - 10] ^= 0xff;
    putObject(key, tampered);
    try {
      const r = userData(['--root', firstRoot, '--no-start'], { DEPLOYMENT_BUCKET: bucket, DEPLOYMENT_KEY: key });
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toContain(`CHECKSUM MISMATCH for s3://${bucket}/${key}`);
      expect(r.stderr).toContain(`nothing changed (current -> releases/${version})`);
      expect(readlinkSync(join(firstRoot, 'current'))).toBe(`releases/${version}`);
      const health = await fetch(`http://127.0.0.1:${firstPort}/health`).then((res) => res.json());
      expect(health).toMatchObject({ version });
    } finally {
      putObject(key, original);
    }
  });

  it('a key that does not exist exits 1 and lists the newest published versions', () => {
    const r = userData(['--root', mkdtempSync(join(base, 'ud-missing-')), '--no-start'], {
      DEPLOYMENT_BUCKET: bucket,
      DEPLOYMENT_KEY: `${prefix}/artifacts/express-api/999999/${EXPRESS_API_TARBALL}`,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`s3://${bucket}/${prefix}/artifacts/express-api/999999/${EXPRESS_API_TARBALL} does not exist`);
    expect(r.stderr).toContain('newest published versions of express-api');
    expect(r.stderr).toMatch(new RegExp(`  ${version}  published \\d{4}-\\d\\d-\\d\\dT`));
  });

  it('BUILDONCE_ENV reads the SSM release pointer {bucket,key,version,sha256}; a pointer/manifest sha256 disagreement is refused', () => {
    const pointer = { bucket, key, version, sha256: stored.manifest.files[0]!.sha256 };
    aws(['ssm', 'put-parameter', '--name', '/buildonce/dev/express-api', '--type', 'String', '--overwrite', '--value', JSON.stringify(pointer)]);
    const root = mkdtempSync(join(base, 'ud-ssm-'));
    const r = userData(['--root', root, '--no-start'], { BUILDONCE_ENV: 'dev' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain(`pointer: express-api@${version} in dev`);
    expect(readlinkSync(join(root, 'current'))).toBe(`releases/${version}`);

    aws([
      'ssm',
      'put-parameter',
      '--name',
      '/buildonce/bad/express-api',
      '--type',
      'String',
      '--overwrite',
      '--value',
      JSON.stringify({ ...pointer, sha256: 'a'.repeat(64) }),
    ]);
    const bad = userData(['--root', root, '--no-start'], { BUILDONCE_ENV: 'bad' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('refusing to deploy');
    aws(['ssm', 'put-parameter', '--name', '/buildonce/junk/express-api', '--type', 'String', '--overwrite', '--value', 'not json']);
    const junk = userData(['--root', root, '--no-start'], { BUILDONCE_ENV: 'junk' });
    expect(junk.status).toBe(1);
    expect(junk.stderr).toContain('SSM parameter /buildonce/junk/express-api (a release pointer) is not what was expected');
    const none = userData(['--root', root, '--no-start'], { BUILDONCE_ENV: 'staging' });
    expect(none.status).toBe(1);
    expect(none.stderr).toContain('cannot read SSM parameter /buildonce/staging/express-api');
  });

  it('BUILDONCE_POINTER=s3 reads releases/<project>/<env>/current.json from the store', () => {
    const current = { version, artifact: { file: EXPRESS_API_TARBALL, sha256: stored.manifest.files[0]!.sha256, namespace: 'trusted' } };
    putObject(`${prefix}/releases/express-api/prod/current.json`, Buffer.from(JSON.stringify(current)));
    const root = mkdtempSync(join(base, 'ud-s3ptr-'));
    const r = userData(['--root', root, '--no-start'], { BUILDONCE_ENV: 'prod', BUILDONCE_POINTER: 's3', BUILDONCE_STORE: `s3://${bucket}/${prefix}` });
    expect(r.status, r.stderr).toBe(0);
    expect(readlinkSync(join(root, 'current'))).toBe(`releases/${version}`);
  });

  it('without --foreground it writes a systemd unit and restarts it (systemctl stubbed)', () => {
    const root = mkdtempSync(join(base, 'ud-systemd-'));
    const units = mkdtempSync(join(base, 'ud-units-'));
    const calls = join(units, 'calls');
    const stub = join(units, 'systemctl');
    writeFileSync(stub, `#!/usr/bin/env bash\necho "$*" >> ${JSON.stringify(calls)}\n`);
    chmodSync(stub, 0o755);
    const r = userData(['--root', root, '--systemd-dir', units, '--health-timeout', '0', '--port', '8123'], {
      DEPLOYMENT_BUCKET: bucket,
      DEPLOYMENT_KEY: key,
      BUILDONCE_SYSTEMCTL: stub,
    });
    expect(r.status, r.stderr).toBe(0);
    const unit = readFileSync(join(units, 'express-api.service'), 'utf8');
    expect(unit).toContain(`ExecStart=${process.execPath} --enable-source-maps ${root}/current/main.js`);
    expect(unit).toContain('Environment=PORT=8123');
    expect(unit).toContain(`WorkingDirectory=${root}/current`);
    expect(readFileSync(calls, 'utf8').trim().split('\n')).toEqual(['daemon-reload', 'enable express-api.service', 'restart express-api.service']);
  });

  it('deployLocal (TypeScript) produces the same layout as user-data.sh from the same store', async () => {
    const root = mkdtempSync(join(base, 'ud-ts-'));
    const prev = { ...process.env };
    Object.assign(process.env, s3().moto.env);
    try {
      const store = new S3BlobStore(parseStoreUrl(`s3://${bucket}/${prefix}`) as Extract<ReturnType<typeof parseStoreUrl>, { kind: 's3' }>, {
        forcePathStyle: true,
      });
      const r = await deployLocal({ store, project: 'express-api' as ProjectName, version: version as Version, root });
      expect(r.status).toBe('deployed');
    } finally {
      process.env = prev;
    }
    expect(readlinkSync(join(root, 'current'))).toBe(readlinkSync(join(firstRoot, 'current')));
    const files = (dir: string) =>
      readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((d) => d.isFile())
        .map((d) => join(d.parentPath, d.name).slice(dir.length + 1))
        .sort();
    const ts = join(root, 'releases', version);
    const sh = join(firstRoot, 'releases', version);
    expect(files(ts)).toEqual(files(sh));
    expect(files(sh)).toEqual(['.buildonce/manifest.json', 'artifact-info.json', 'main.js', 'main.js.map', 'package.json']);
    for (const f of files(sh)) expect(readFileSync(join(ts, f)).equals(readFileSync(join(sh, f))), f).toBe(true);
  });
});
