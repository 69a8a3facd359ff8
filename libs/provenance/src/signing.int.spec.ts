import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateKeyCommand, CreateAliasCommand, type KMSClient } from '@aws-sdk/client-kms';
import { awsClients } from '@buildonce/aws';
import { run } from '@buildonce/process';
import { makeKeyPair, type MotoServer, startMoto } from '@buildonce/testing';
import { attest } from './attest';
import { envelopePayload, pae } from './dsse';
import { ProvenanceError } from './errors';
import { fileSigner, resolveVerificationKeys, signerFromSpec } from './keys';
import type { StatementInput } from './statement';
import { provenancePolicySchema, verifyProvenance } from './verify';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';

const input: StatementInput = {
  project: 'rust-scorer' as ProjectName,
  target: 'build',
  version: '4711' as Version,
  files: [{ name: 'bootstrap.zip', sha256: 'a'.repeat(64) }],
  resolvedDependencies: [{ name: 'toolchain', annotations: { toolchain: 'test' } }],
  builderId: 'local:test',
  invocationId: 'local:test:1',
  startedOn: new Date(),
  finishedOn: new Date(),
};

const tmp = mkdtempSync(join(tmpdir(), 'buildonce-openssl-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** `openssl dgst -sha256 -verify pub.pem -signature sig.der pae.bin` over the envelope's PAE bytes: an independent verifier. */
async function opensslVerifies(
  envelope: { payloadType: string; payload: string; signatures: { sig: string }[] },
  publicPem: string,
  name: string,
): Promise<boolean> {
  const dir = mkdtempSync(join(tmp, `${name}-`));
  writeFileSync(join(dir, 'pub.pem'), publicPem);
  writeFileSync(join(dir, 'pae.bin'), pae(envelope.payloadType, envelopePayload(envelope)));
  writeFileSync(join(dir, 'sig.der'), Buffer.from(envelope.signatures[0]!.sig, 'base64'));
  const r = await run('openssl', ['dgst', '-sha256', '-verify', join(dir, 'pub.pem'), '-signature', join(dir, 'sig.der'), join(dir, 'pae.bin')], {
    reject: false,
  });
  return r.exitCode === 0 && /Verified OK/.test(r.stdout);
}

describe('local PEM signer', () => {
  it('produces a DSSE signature openssl verifies over the PAE bytes, and rejects once the payload changes', async () => {
    const k = makeKeyPair(mkdtempSync(join(tmp, 'key-')));
    const a = await attest(
      input,
      await signerFromSpec(`file:${k.privatePath}`, {
        kms: () => {
          throw new Error('no kms');
        },
      }),
    );
    expect(await opensslVerifies(a.envelope, k.publicPem, 'ok')).toBe(true);
    const edited = { ...a.envelope, payload: Buffer.from(envelopePayload(a.envelope).toString().replace('4711', '4712')).toString('base64') };
    expect(await opensslVerifies(edited, k.publicPem, 'edited')).toBe(false);
    const other = makeKeyPair(mkdtempSync(join(tmp, 'key-')));
    expect(await opensslVerifies(a.envelope, other.publicPem, 'other')).toBe(false);
  });

  it('signs keys made by openssl itself (SEC1 "EC PRIVATE KEY" PEM)', async () => {
    const dir = mkdtempSync(join(tmp, 'ossl-'));
    await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', join(dir, 'key.pem')]);
    await run('openssl', ['ec', '-in', join(dir, 'key.pem'), '-pubout', '-out', join(dir, 'pub.pem')]);
    const a = await attest(input, await fileSigner(join(dir, 'key.pem')));
    const { readFileSync } = await import('node:fs');
    expect(await opensslVerifies(a.envelope, readFileSync(join(dir, 'pub.pem'), 'utf8'), 'sec1')).toBe(true);
  });
});

describe('AWS KMS signer (moto_server)', () => {
  let moto: MotoServer;
  let kms: KMSClient;
  let keyArn: string;
  beforeAll(async () => {
    moto = await startMoto();
    kms = awsClients({
      env: moto.env,
      overrides: { kms: { endpoint: moto.endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } } },
    }).kms();
    const k = await kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY', Description: 'buildonce provenance test' }));
    keyArn = k.KeyMetadata!.Arn!;
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/buildonce-provenance', TargetKeyId: k.KeyMetadata!.KeyId! }));
  });
  afterAll(async () => {
    kms?.destroy();
    await moto?.stop();
  });

  it('signs with ECDSA_SHA_256; GetPublicKey gives the key that verifies it, in node and in openssl', async () => {
    const signer = await signerFromSpec('kms:alias/buildonce-provenance', { kms: () => kms });
    const a = await attest(input, signer);
    expect(a.envelope.signatures[0]!.keyid).toBe(keyArn);
    const keys = await resolveVerificationKeys([`kms:${keyArn}`], { kms: () => kms });
    expect(keys[0]!.id).toBe(`kms:${keyArn}`);
    const v = verifyProvenance({
      project: 'rust-scorer' as ProjectName,
      version: '4711' as Version,
      environment: 'prod' as EnvironmentName,
      envelope: a.bytes,
      source: 'test',
      files: input.files,
      policy: provenancePolicySchema.parse({ keys: [`kms:${keyArn}`], builders: ['local:*'] }),
      keys,
    });
    expect(v.record).toMatchObject({ signed: true, verified: true, key: `kms:${keyArn}` });
    const pem = keys[0]!.key.export({ format: 'pem', type: 'spki' }).toString();
    expect(await opensslVerifies(a.envelope, pem, 'kms')).toBe(true);
  });

  it('a key that cannot sign is one ProvenanceError line naming the key and the permission', async () => {
    const signer = await signerFromSpec('kms:alias/does-not-exist', { kms: () => kms });
    const err = await attest(input, signer).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProvenanceError);
    expect((err as Error).message).toMatch(/^KMS Sign with key alias\/does-not-exist failed: .*kms:Sign/);
    expect((err as Error).message.split('\n')).toHaveLength(1);
    await expect(resolveVerificationKeys(['kms:alias/does-not-exist'], { kms: () => kms })).rejects.toThrow(/kms:GetPublicKey/);
  });
});
