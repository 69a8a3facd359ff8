import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256Bytes } from '@buildonce/artifact';
import { inspectEnvelope, provenancePolicySchema, resolveVerificationKeys, verifyProvenance } from '@buildonce/provenance';
import { runPublishCommand, type PublishCommand } from './commands';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';
import { writeTestBuildOutput, gitIn } from '@buildonce/testing';

const root = mkdtempSync(join(tmpdir(), 'buildonce-prov-pub-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const tmp = (p: string) => mkdtempSync(join(root, `${p}-${n++}-`));

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const keyPath = join(root, 'signing.pem');
writeFileSync(keyPath, privateKey.export({ format: 'pem', type: 'pkcs8' }));
const publicPem = publicKey.export({ format: 'pem', type: 'spki' }).toString();

function buildOutput(version = '42'): string {
  return writeTestBuildOutput(tmp('out'), { version, bytes: Buffer.from(`zip bytes ${version}`), toolchain: 'cargo 1.95' });
}

/** Publishes `svc` into the file store `storeDir` from a fresh workspace, quietly unless `extra` gives a log; `extra` last. */
function publishSvc(storeDir: string, processEnv: NodeJS.ProcessEnv, outputDir = buildOutput(), extra: Partial<PublishCommand> = {}) {
  return runPublishCommand({
    project: 'svc' as ProjectName,
    workspaceRoot: tmp('ws'),
    outputDir,
    store: `file://${storeDir}`,
    processEnv,
    log: () => undefined,
    ...extra,
  });
}

describe('runPublishCommand with provenance', () => {
  it('signs with a local key: provenance.intoto.json is written after the files and before manifest.json, and verifies', async () => {
    const storeDir = tmp('store');
    const ws = tmp('ws');
    writeFileSync(join(ws, 'package-lock.json'), '{"lockfileVersion":3}');
    const lines: string[] = [];
    const r = await runPublishCommand({
      project: 'svc' as ProjectName,
      workspaceRoot: ws,
      outputDir: buildOutput(),
      store: `file://${storeDir}`,
      processEnv: {
        GITHUB_ACTIONS: 'true',
        GITHUB_REF: 'refs/heads/main',
        GITHUB_SHA: 'c0ffee',
        GITHUB_RUN_ID: '9',
        GITHUB_RUN_ATTEMPT: '2',
        GITHUB_REPOSITORY: 'acme/repo',
        GITHUB_WORKFLOW_REF: 'acme/repo/.github/workflows/release.yml@refs/heads/main',
        BUILDONCE_SIGNING_KEY: `file:${keyPath}`,
      },
      buildOptions: { release: true },
      log: (l) => lines.push(l),
    });
    expect(r.status).toBe('published');
    expect(r.signing).toMatchObject({ key: `file:${keyPath}` });
    expect(r.signing!.totalMs).toBeLessThan(5000);
    expect(lines.some((l) => /^\[svc\] signed provenance with file:.*: signing [0-9.]+ ms, build facts \(git, lock files\) [0-9.]+ ms$/.test(l))).toBe(true);
    expect(lines.some((l) => l.includes('unsigned'))).toBe(false);

    const bytes = readFileSync(join(storeDir, 'artifacts/svc/42/provenance.intoto.json'));
    const { facts, statement } = inspectEnvelope(bytes, 'test');
    expect(facts).toMatchObject({
      project: 'svc',
      version: '42',
      target: 'build',
      builder: 'acme/repo/.github/workflows/release.yml@refs/heads/main',
      ref: 'refs/heads/main',
      commit: 'c0ffee',
      invocationId: 'https://github.com/acme/repo/actions/runs/9/attempts/2',
    });
    const deps = statement.predicate.buildDefinition.resolvedDependencies!;
    expect(deps).toContainEqual({ uri: 'git+https://github.com/acme/repo@refs/heads/main', digest: { gitCommit: 'c0ffee' } });
    expect(deps).toContainEqual({ name: 'package-lock.json', digest: { sha256: sha256Bytes('{"lockfileVersion":3}').hex } });
    expect(deps.find((d) => d.name === 'toolchain')?.annotations).toMatchObject({ toolchain: 'cargo 1.95', runtime: 'provided.al2023' });
    expect(statement.predicate.buildDefinition.externalParameters.options).toEqual({ release: true });

    const v = verifyProvenance({
      project: 'svc' as ProjectName,
      version: '42' as Version,
      environment: 'prod' as EnvironmentName,
      envelope: bytes,
      source: 'test',
      files: [{ name: 'bootstrap.zip', sha256: sha256Bytes('zip bytes 42').hex }],
      policy: provenancePolicySchema.parse({ keys: [publicPem], builders: ['acme/repo/.github/workflows/release.yml@*'], refs: ['refs/heads/main'] }),
      keys: await resolveVerificationKeys([publicPem], {
        kms: () => {
          throw new Error('no kms');
        },
      }),
    });
    expect(v.record.verified).toBe(true);
  });

  it('without a key: one "unsigned" line, no provenance, publish succeeds', async () => {
    const storeDir = tmp('store');
    const lines: string[] = [];
    const r = await runPublishCommand({
      project: 'svc' as ProjectName,
      workspaceRoot: tmp('ws'),
      outputDir: buildOutput(),
      store: `file://${storeDir}`,
      processEnv: {},
      log: (l) => lines.push(l),
    });
    expect(r.status).toBe('published');
    expect(r.signing).toBeUndefined();
    expect(lines.filter((l) => l.includes('unsigned'))).toEqual([
      '[svc] unsigned: BUILDONCE_SIGNING_KEY is not set, version 42 has no provenance (environments that require provenance will refuse it)',
    ]);
    expect(existsSync(join(storeDir, 'artifacts/svc/42/provenance.intoto.json'))).toBe(false);
  });

  it('an unusable key fails before anything is written', async () => {
    const storeDir = tmp('store');
    await expect(publishSvc(storeDir, { BUILDONCE_SIGNING_KEY: `file:${join(root, 'nope.pem')}` })).rejects.toThrow(
      /^signing key file .*nope.pem cannot be read \(ENOENT\): fix BUILDONCE_SIGNING_KEY/,
    );
    await expect(publishSvc(storeDir, { BUILDONCE_SIGNING_KEY: 'vault:x' })).rejects.toThrow(/must be kms:<key-id\|arn\|alias> or file:/);
    expect(existsSync(join(storeDir, 'artifacts'))).toBe(false);
  });

  it('an already-published version is not signed again; a dry run signs nothing', async () => {
    const storeDir = tmp('store');
    const out = buildOutput();
    const env = { BUILDONCE_SIGNING_KEY: `file:${keyPath}` };
    await publishSvc(storeDir, env, out);
    const first = readFileSync(join(storeDir, 'artifacts/svc/42/provenance.intoto.json'));
    const again = await publishSvc(storeDir, env, out);
    expect(again.status).toBe('already-published');
    expect(again.signing).toBeUndefined();
    expect(readFileSync(join(storeDir, 'artifacts/svc/42/provenance.intoto.json'))).toEqual(first);
    const lines: string[] = [];
    const dryStore = tmp('store');
    const dry = await publishSvc(dryStore, env, out, { dryRun: true, log: (l) => lines.push(l) });
    expect(dry.status).toBe('dry-run');
    expect(lines.some((l) => l.includes('dry run: would sign provenance with file:'))).toBe(true);
    expect(existsSync(join(dryStore, 'artifacts'))).toBe(false);
  });

  it('from a work tree with uncommitted changes: says so and the signed statement records dirty: true', async () => {
    const ws = tmp('dirty-ws');
    const git = (...a: string[]) => gitIn(ws, ...a);
    git('init', '-q', '-b', 'main');
    writeFileSync(join(ws, 'src.rs'), 'fn main() {}');
    git('add', '-A');
    git('commit', '-qm', 'one');
    writeFileSync(join(ws, 'src.rs'), 'fn main() { /* not committed */ }');
    const storeDir = tmp('store');
    const lines: string[] = [];
    await runPublishCommand({
      project: 'svc' as ProjectName,
      workspaceRoot: ws,
      outputDir: buildOutput('43'),
      store: `file://${storeDir}`,
      processEnv: { BUILDONCE_SIGNING_KEY: `file:${keyPath}` },
      log: (l) => lines.push(l),
    });
    expect(lines).toContain('[svc] the work tree has 1 uncommitted path(s): the provenance records this version as built from a dirty tree (dirty: true)');
    const { facts, statement } = inspectEnvelope(readFileSync(join(storeDir, 'artifacts/svc/43/provenance.intoto.json')), 'test');
    expect(facts).toMatchObject({ dirty: true, ref: 'refs/heads/main' });
    expect(statement.predicate.buildDefinition.resolvedDependencies![0]).toMatchObject({ name: 'source', annotations: { dirty: true, uncommittedPaths: 1 } });
    expect(JSON.stringify(statement)).not.toContain(ws);
  });
});
