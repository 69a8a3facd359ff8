import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifest, sha256File, tarGzPolicyViolation } from '@buildonce/artifact';
import { deployLocal } from '@buildonce/deploy';
import { openStore, parseStoreUrl, publishArtifact, type BlobStore } from '@buildonce/store';
import { benignArchives, EXPRESS_API_TARBALL, EXPRESS_API_USER_DATA, hostileArchives, rawTarGz, smuggledArchives, type RawTarEntry } from '@buildonce/testing';
import { useMotoBucket } from '@buildonce/testing/src/moto-hooks';
import type { ProjectName, Version } from '@buildonce/values';

/**
 * user-data.sh refuses exactly the archives deployLocal refuses (the shared hostile
 * corpus), says why in one line, writes nothing, and cleans what a killed run left behind.
 */
const bucket = 'userdata-hostile';
const project = 'express-api';
const s3 = useMotoBucket(bucket);
let store: BlobStore;
let base = '';
let nextVersion = 5000;

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'ud-hostile-'));
  store = openStore(parseStoreUrl(`s3://${bucket}/t`));
});
afterAll(async () => {
  if (base) rmSync(base, { recursive: true, force: true });
});

/** Publishes hand-made tarball entries as a new version; returns the version and its S3 key. */
async function publishRaw(entries: RawTarEntry[] | Buffer): Promise<{ version: string; key: string }> {
  const version = String(nextVersion++);
  const dir = mkdtempSync(join(base, 'art-'));
  writeFileSync(join(dir, EXPRESS_API_TARBALL), Buffer.isBuffer(entries) ? entries : rawTarGz(entries));
  const d = await sha256File(join(dir, EXPRESS_API_TARBALL));
  const manifest = parseManifest({
    schemaVersion: 1,
    project,
    version,
    kind: 'node-tarball',
    files: [{ name: EXPRESS_API_TARBALL, size: d.size, sha256: d.hex }],
    runtime: 'node>=20',
    architecture: 'x86_64',
    entry: 'main.js',
    toolchain: 'test',
  });
  await publishArtifact({ store, manifest, dir, metadata: { publishedAt: new Date().toISOString(), builder: 'local:test', trusted: true } });
  return { version, key: `t/artifacts/${project}/${version}/${EXPRESS_API_TARBALL}` };
}

function userData(root: string, key: string) {
  const r = spawnSync('bash', [EXPRESS_API_USER_DATA, '--no-start', '--root', root], {
    env: { ...process.env, ...s3().moto.env, DEPLOYMENT_BUCKET: bucket, DEPLOYMENT_KEY: key, BUILDONCE_ENV: undefined },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status ?? 1, stderr: r.stderr };
}

/**
 * Runs user-data.sh on `key` into `root` and checks that it refused the archive: exit 1, exactly one ERROR
 * line, naming the EXPRESS_API_TARBALL, no release and no `current`.
 * @returns the ERROR line
 */
function expectScriptRefuses(root: string, key: string): string {
  const r = userData(root, key);
  expect(r.status, r.stderr).toBe(1);
  const errors = r.stderr.split('\n').filter((l) => l.includes('ERROR'));
  expect(errors, r.stderr).toHaveLength(1);
  expect(errors[0]).toMatch(new RegExp(`\\[express-api\\] ERROR: refused ${EXPRESS_API_TARBALL.replace(/\./g, '\\.')}: .+; nothing changed`));
  expect(readdirSync(join(root, 'releases'))).toEqual([]);
  expect(existsSync(join(root, 'current'))).toBe(false);
  return errors[0]!;
}

/** The tar checker embedded in user-data.sh, exactly as the script runs it (`node - <file>`). */
function embeddedChecker(): string {
  const m = /check_tarball\(\) \{\n {2}"\$node_bin" - "\$1" <<'JS'\n([\s\S]*?)\nJS\n\}/.exec(readFileSync(EXPRESS_API_USER_DATA, 'utf8'));
  if (!m) throw new Error('check_tarball not found in user-data.sh');
  return m[1]!;
}

describe('the tar checker embedded in user-data.sh and the deploy profile of ArchivePolicy (deployLocal) give the same verdicts', () => {
  it.each([...hostileArchives(), ...benignArchives()].map((a) => [a.name, a] as const))('%s', async (_n, a) => {
    const file = join(base, `${a.name}.tar.gz`);
    writeFileSync(file, rawTarGz(a.entries));
    const r = spawnSync(process.execPath, ['-', file], { input: embeddedChecker(), encoding: 'utf8' });
    const ts = await tarGzPolicyViolation(file);
    if (ts === undefined) expect(r.status, r.stdout).toBe(0);
    else {
      expect(r.status).toBe(1);
      expect(r.stdout.trim()).toBe(ts);
    }
    expect(hostileArchives().some((h) => h.name === a.name)).toBe(ts !== undefined);
  });
});

/** Full boots of user-data.sh (aws CLI calls make each run take seconds): representatives of the corpus. */
const REPRESENTATIVES = ['absolute-symlink-dir', 'absolute-symlink-file', 'symlink-chain-escape', 'dangling-buildonce-symlink'];

describe('user-data.sh and deployLocal refuse the same archives', () => {
  it.each(
    hostileArchives()
      .filter((a) => REPRESENTATIVES.includes(a.name))
      .map((a) => [a.name, a] as const),
  )('%s: both refuse, one line, nothing written', async (_n, a) => {
    const { version, key } = await publishRaw(a.entries);
    const shRoot = join(base, `sh-${a.name}`);
    const refusal = expectScriptRefuses(shRoot, key);
    expect(readdirSync(join(shRoot, '.incoming'))).toEqual([]);

    const tsRoot = join(base, `ts-${a.name}`);
    const err = await deployLocal({ store, project: project as ProjectName, version: version as Version, root: tsRoot }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/refused express-api-deployment\.tar\.gz: /);
    // the same reason, word for word, from both implementations of the policy
    expect(refusal.replace(/.*refused [^:]+: (.*); nothing changed.*/, '$1')).toBe(err!.message.replace(/.*refused [^:]+: (.*); nothing was changed$/, '$1'));
    expect(existsSync('/tmp/buildonce-pwned')).toBe(false);
  });

  it('accepts a benign archive with inside symlinks, and cleans .incoming/*, releases/.*.tmp-* and .current.tmp-* left by a killed run', async () => {
    const { version, key } = await publishRaw(benignArchives()[0]!.entries);
    const root = join(base, 'sh-leftovers');
    mkdirSync(join(root, '.incoming', 'userdata-Killed1', 'sub'), { recursive: true });
    writeFileSync(join(root, '.incoming', 'userdata-Killed1', 'sub', 'half.tar.gz'), 'partial');
    mkdirSync(join(root, 'releases', '.123.tmp-999'), { recursive: true });
    writeFileSync(join(root, 'releases', '.123.tmp-999', 'main.js'), 'half');
    symlinkSync('releases/123', join(root, '.current.tmp-999'));
    const r = userData(root, key);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/removing 3 leftover\(s\) of an interrupted deploy/);
    expect(readdirSync(join(root, '.incoming'))).toEqual([]);
    expect(readdirSync(join(root, 'releases'))).toEqual([version]);
    expect(readdirSync(root).sort()).toEqual(['.incoming', '.lock', 'current', 'releases']);
    expect(readlinkSync(join(root, 'current'))).toBe(`releases/${version}`);
    expect(readlinkSync(join(root, 'releases', version, 'lib', 'current'))).toBe('v1');
    const ts = await deployLocal({ store, project: project as ProjectName, version: version as Version, root: join(base, 'ts-ok') });
    expect(ts.status).toBe('deployed');
  });
});

describe("user-data.sh judges what GNU tar extracted, not a second parser's reading", () => {
  it.each(smuggledArchives().map((a) => [a.name, a] as const))(
    '%s: GNU tar would deploy an escaping link; user-data.sh refuses it, nothing deployed',
    async (_n, a) => {
      // the archive really is hostile to the extractor: a plain GNU tar extraction makes the escaping link
      const probe = mkdtempSync(join(base, 'probe-'));
      writeFileSync(join(probe, 'a.tgz'), a.bytes);
      mkdirSync(join(probe, 'x'));
      spawnSync('tar', ['-xzf', join(probe, 'a.tgz'), '-C', join(probe, 'x')]);
      const links = readdirSync(join(probe, 'x')).filter((f) => lstatSync(join(probe, 'x', f)).isSymbolicLink());
      expect(links.length, a.name).toBeGreaterThan(0);

      const { key } = await publishRaw(a.bytes);
      const root = join(base, `sh-${a.name}`);
      // the embedded archive checker reads these archives differently and lets them through: the tree check refuses
      expect(expectScriptRefuses(root, key)).toMatch(/: symlink \S+ -> \S+ resolves outside the release/);
    },
  );
});
