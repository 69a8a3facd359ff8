import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateAliasCommand, CreateKeyCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifest, sha256File, writeDeterministicZip, type Manifest } from '@buildonce/artifact';
import { awsClients } from '@buildonce/aws';
import {
  attest,
  envelopePayload,
  fileSigner,
  kmsSigner,
  ProvenanceRefusedError,
  serializeEnvelope,
  type Signer,
  type StatementInput,
} from '@buildonce/provenance';
import { openStore, parseStoreUrl, provenanceKey, publishArtifact, publishMetadataFromEnv, type BlobStore } from '@buildonce/store';
import { FakeTarget, makeKeyPair, type MotoServer, startMoto } from '@buildonce/testing';
import { parseConfig, resolveEnvironment } from '@buildonce/config';
import { PolicyError } from '@buildonce/errors';
import { readCurrent, readHistory } from '@buildonce/ledger';
import { promoteVersion } from './promote';
import { collectReleases } from './releases';
import { rollbackEnvironment } from './rollback';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';

const root = mkdtempSync(join(tmpdir(), 'buildonce-prov-promote-'));
let moto: MotoServer;
let kmsKeyArn: string;
const signing = makeKeyPair(mkdtempSync(join(root, 'key-')));
const other = makeKeyPair(mkdtempSync(join(root, 'other-')));
const WORKFLOW = 'acme/repo/.github/workflows/release.yml@refs/heads/main';
const meta = { commit: 'c'.repeat(40), runId: '42', actor: 'ci-bot' };

beforeAll(async () => {
  moto = await startMoto();
  // the promotion resolves `kms:` keys with the default AWS client chain (as in CI)
  Object.assign(process.env, moto.env);
  const kms = awsClients().kms();
  const k = await kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }));
  kmsKeyArn = k.KeyMetadata!.Arn!;
  await kms.send(new CreateAliasCommand({ AliasName: 'alias/buildonce-publish', TargetKeyId: k.KeyMetadata!.KeyId! }));
});
afterAll(async () => {
  await moto?.stop();
  rmSync(root, { recursive: true, force: true });
});

let n = 0;
/** A fresh file store with environments dev → prod (prod requires dev and signed provenance) and a FakeTarget. */
function world(policy: Record<string, unknown> = {}) {
  const store = openStore(parseStoreUrl(`file://${mkdtempSync(join(root, `store-${n++}-`))}`));
  const config = parseConfig(
    {
      environments: [
        { name: 'dev' },
        {
          name: 'staging',
          requires: [],
          provenance: {
            keys: [`file:${signing.publicPath}`, 'kms:alias/buildonce-publish'],
            builders: [`acme/repo/.github/workflows/release.yml@*`],
            refs: ['refs/heads/main'],
            ...policy,
          },
        },
        { name: 'prod', requires: ['dev'], provenance: { keys: [signing.publicPem] } },
      ],
    },
    join(root, 'buildonce.json'),
  );
  return { store, config, target: new FakeTarget() };
}

/** Publishes a small lambda zip; `sign` shapes the statement and picks the signer (none = unsigned). */
async function publish(store: BlobStore, version: string, sign?: { signer?: Signer; statement?: Partial<StatementInput> }): Promise<Manifest> {
  const dir = mkdtempSync(join(root, 'out-'));
  await writeDeterministicZip([{ name: 'bootstrap', bytes: Buffer.from(`#!/bin/sh\necho ${version}\n`) }], join(dir, 'bootstrap.zip'));
  const d = await sha256File(join(dir, 'bootstrap.zip'));
  const manifest = parseManifest({
    schemaVersion: 1,
    project: 'svc',
    version,
    kind: 'lambda-zip',
    files: [{ name: 'bootstrap.zip', size: d.size, sha256: d.hex }],
    runtime: 'provided.al2023',
    architecture: 'x86_64',
    handler: 'bootstrap',
    toolchain: 'test',
  });
  const provenance = sign
    ? async () =>
        (
          await attest(
            {
              project: 'svc' as ProjectName,
              target: 'build',
              version: version as Version,
              files: manifest.files,
              ref: 'refs/heads/main',
              resolvedDependencies: [{ uri: 'git+https://github.com/acme/repo@refs/heads/main', digest: { gitCommit: meta.commit } }],
              builderId: WORKFLOW,
              invocationId: 'https://github.com/acme/repo/actions/runs/1/attempts/1',
              startedOn: new Date(),
              finishedOn: new Date(),
              ...sign.statement,
            },
            sign.signer ?? (await fileSigner(signing.privatePath)),
          )
        ).bytes
    : undefined;
  await publishArtifact({ store, manifest, dir, metadata: publishMetadataFromEnv({ GITHUB_SHA: meta.commit }), provenance });
  return manifest;
}

async function promote(w: ReturnType<typeof world>, version: string, env: string, log: string[] = []) {
  return promoteVersion({
    store: w.store,
    aws: awsClients(),
    project: 'svc' as ProjectName,
    version: version as Version,
    environment: resolveEnvironment(w.config, env as EnvironmentName),
    target: w.target,
    meta,
    log: (l) => log.push(l),
  });
}

/** Expects a one-line refusal naming `rule`, and that the environment is unchanged (no deploy, no history, no pointer). */
async function expectRefused(w: ReturnType<typeof world>, version: string, env: string, rule: string): Promise<string> {
  const err = await promote(w, version, env).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ProvenanceRefusedError);
  expect((err as ProvenanceRefusedError).rule).toBe(rule);
  const msg = (err as Error).message;
  expect(msg.split('\n')).toHaveLength(1);
  expect(msg).toMatch(new RegExp(`^provenance rule "${rule}" failed for svc@${version} in ${env}: `));
  expect(w.target.deployed).toEqual([]);
  expect(await readCurrent(w.store, 'svc' as ProjectName, env as EnvironmentName)).toBeUndefined();
  expect(await readHistory(w.store, 'svc' as ProjectName, env as EnvironmentName)).toEqual([]);
  return msg;
}

describe('promotion to an environment that requires provenance', () => {
  it('accepts a version signed by an allowed key from an allowed builder and ref, and records what was verified', async () => {
    const w = world();
    await publish(w.store, '100', {});
    const log: string[] = [];
    const r = await promote(w, '100', 'staging', log);
    expect(r.status).toBe('promoted');
    expect(w.target.deployed).toEqual(['100']);
    expect(
      log.some((l) => l.startsWith(`provenance verified: signed by file:${signing.publicPath}, builder ${WORKFLOW}, ref refs/heads/main, commit cccccccccccc`)),
    ).toBe(true);
    const entry = (await readCurrent(w.store, 'svc' as ProjectName, 'staging' as EnvironmentName))!.entry;
    expect(entry.artifact.provenance).toEqual({
      signed: true,
      verified: true,
      rules: ['present', 'envelope', 'signature', 'statement', 'subject', 'builder', 'ref'],
      key: `file:${signing.publicPath}`,
      builder: WORKFLOW,
      ref: 'refs/heads/main',
      commit: meta.commit,
    });
    expect((await collectReleases({ store: w.store, project: 'svc' as ProjectName, env: 'staging' as EnvironmentName }))[0]!.provenance).toBe('verified');
  });

  it('accepts a version signed by the KMS key (public key from KMS GetPublicKey)', async () => {
    const w = world();
    await publish(w.store, '101', { signer: kmsSigner(awsClients().kms(), 'alias/buildonce-publish') });
    expect((await promote(w, '101', 'staging')).status).toBe('promoted');
    const entry = (await readCurrent(w.store, 'svc' as ProjectName, 'staging' as EnvironmentName))!.entry;
    expect(entry.artifact.provenance).toMatchObject({ verified: true, key: 'kms:alias/buildonce-publish' });
    expect(JSON.parse(readFileSync(fileOf(w.store, provenanceKey('svc' as ProjectName, '101' as Version)), 'utf8')).signatures[0].keyid).toBe(kmsKeyArn);
  });

  it('refuses an unsigned version', async () => {
    const w = world();
    await publish(w.store, '200');
    const msg = await expectRefused(w, '200', 'staging', 'present');
    expect(msg).toContain('published unsigned');
  });

  it('refuses when the envelope is missing from the store', async () => {
    const w = world();
    await publish(w.store, '201', {});
    await w.store.delete(provenanceKey('svc' as ProjectName, '201' as Version));
    await expectRefused(w, '201', 'staging', 'present');
  });

  it('refuses malformed JSON', async () => {
    const w = world();
    await publish(w.store, '202', {});
    writeFileSync(fileOf(w.store, provenanceKey('svc' as ProjectName, '202' as Version)), '{"payloadType": "application/vnd.in-toto+json", "payl');
    await expectRefused(w, '202', 'staging', 'envelope');
  });

  it('refuses a payload edited after signing', async () => {
    const w = world();
    await publish(w.store, '203', { statement: { builderId: 'local:laptop' } });
    const path = fileOf(w.store, provenanceKey('svc' as ProjectName, '203' as Version));
    const env = JSON.parse(readFileSync(path, 'utf8'));
    const edited = envelopePayload(env).toString().replace('local:laptop', WORKFLOW);
    writeFileSync(path, serializeEnvelope({ ...env, payload: Buffer.from(edited).toString('base64') }));
    await expectRefused(w, '203', 'staging', 'signature');
  });

  it('refuses a signature by another key', async () => {
    const w = world();
    await publish(w.store, '204', { signer: await fileSigner(other.privatePath) });
    await expectRefused(w, '204', 'staging', 'signature');
  });

  it('refuses a statement whose subject digest differs from the stored file', async () => {
    const w = world();
    await publish(w.store, '205', { statement: { files: [{ name: 'bootstrap.zip', sha256: 'f'.repeat(64) }] } });
    const msg = await expectRefused(w, '205', 'staging', 'subject');
    expect(msg).toContain(`subject bootstrap.zip has sha256 ${'f'.repeat(64)} but the stored file has`);
  });

  it('refuses a builder that is not allowed', async () => {
    const w = world();
    await publish(w.store, '206', { statement: { builderId: 'local:laptop' } });
    await expectRefused(w, '206', 'staging', 'builder');
  });

  it('refuses a ref that is not allowed', async () => {
    const w = world();
    await publish(w.store, '207', { statement: { ref: 'refs/heads/feature-x' } });
    await expectRefused(w, '207', 'staging', 'ref');
  });

  it('checks provenance before the promotion policy; environments without a policy only record signed/unsigned', async () => {
    const w = world();
    await publish(w.store, '300');
    // prod requires dev AND provenance: the provenance refusal comes first
    await expectRefused(w, '300', 'prod', 'present');
    expect((await promote(w, '300', 'dev')).status).toBe('promoted');
    expect((await readCurrent(w.store, 'svc' as ProjectName, 'dev' as EnvironmentName))!.entry.artifact.provenance).toEqual({
      signed: false,
      verified: false,
      rules: [],
    });
    await publish(w.store, '301', {});
    await expect(promote(w, '301', 'prod')).rejects.toBeInstanceOf(PolicyError);
    expect((await promote(w, '301', 'dev')).status).toBe('promoted');
    expect((await readCurrent(w.store, 'svc' as ProjectName, 'dev' as EnvironmentName))!.entry.artifact.provenance).toEqual({
      signed: true,
      verified: false,
      rules: [],
    });
    expect((await promote(w, '301', 'prod')).status).toBe('promoted');
    expect((await collectReleases({ store: w.store, project: 'svc' as ProjectName })).map((r) => [r.environment, r.provenance])).toEqual([
      ['dev', 'signed'],
      ['prod', 'verified'],
    ]);
  });

  it('rollback into an environment that requires provenance checks it too', async () => {
    const w = world({ required: false });
    await publish(w.store, '400');
    await publish(w.store, '401', {});
    expect((await promote(w, '400', 'staging')).status).toBe('promoted');
    expect((await promote(w, '401', 'staging')).status).toBe('promoted');
    // the policy tightens: the unsigned 400 may no longer come back
    const strict = {
      ...w,
      config: parseConfig({ environments: [{ name: 'staging', provenance: { keys: [signing.publicPem] } }] }, join(root, 'buildonce.json')),
    };
    const err = await rollbackEnvironment({
      store: w.store,
      aws: awsClients(),
      project: 'svc' as ProjectName,
      environment: resolveEnvironment(strict.config, 'staging' as EnvironmentName),
      target: w.target,
      meta,
      log: () => undefined,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProvenanceRefusedError);
    expect((await readCurrent(w.store, 'svc' as ProjectName, 'staging' as EnvironmentName))!.entry.version).toBe('401');
    expect(w.target.deployed).toEqual(['400', '401']);
  });
});

describe('config', () => {
  it('rejects a provenance policy without keys and resolves file: keys from the config directory', () => {
    expect(() => parseConfig({ environments: [{ name: 'prod', provenance: { required: true } }] }, '/ws/buildonce.json')).toThrow(
      /environments\.0\.provenance\.keys/,
    );
    const c = parseConfig({ environments: [{ name: 'prod', provenance: { keys: ['file:keys/release.pub.pem', 'kms:alias/x'] } }] }, '/ws/buildonce.json');
    expect(c.environments[0]!.provenance).toEqual({ required: true, keys: ['file:/ws/keys/release.pub.pem', 'kms:alias/x'], builders: [], refs: [] });
  });
});

/** Path of a key in a file store (tests tamper with stored objects the way a leaked credential could). */
function fileOf(store: BlobStore, key: string): string {
  return fileURLToPath(store.uriOf(key));
}
