import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attest, buildContextFromEnv, lockFileDigests, resolvedDependencies } from './attest';
import { envelopePayload, IN_TOTO_PAYLOAD_TYPE, pae, parseEnvelope, serializeEnvelope } from './dsse';
import { ProvenanceError, ProvenanceRefusedError } from './errors';
import { fileSigner, keyFingerprint, parseSigningKeySpec, resolveVerificationKeys, type VerificationKey } from './keys';
import { BUILD_TYPE, buildStatement, SLSA_PROVENANCE_V1, STATEMENT_TYPE, statementFacts, type StatementInput } from './statement';
import { makeKeyPair, gitIn } from '@buildonce/testing';
import { matchesPattern, provenancePolicySchema, verifyProvenance, type VerifyProvenanceInput } from './verify';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';

const sha = (c: string) => c.repeat(64);
const input = (o: Partial<StatementInput> = {}): StatementInput => ({
  project: 'rust-scorer' as ProjectName,
  target: 'build',
  version: '123' as Version,
  files: [{ name: 'bootstrap.zip', sha256: sha('a') }],
  options: { release: true },
  ref: 'refs/heads/main',
  resolvedDependencies: [{ uri: 'git+https://github.com/acme/repo@refs/heads/main', digest: { gitCommit: 'c0ffee' } }],
  builderId: 'acme/repo/.github/workflows/release.yml@refs/heads/main',
  invocationId: 'https://github.com/acme/repo/actions/runs/1/attempts/1',
  startedOn: new Date('2026-01-01T00:00:00Z'),
  finishedOn: new Date('2026-01-01T00:00:01Z'),
  ...o,
});

const pair = makeKeyPair();
const other = makeKeyPair();
afterAll(() => {
  rmSync(pair.dir, { recursive: true, force: true });
  rmSync(other.dir, { recursive: true, force: true });
});
const kms = () => {
  throw new Error('no KMS in unit tests');
};

async function signed(o: Partial<StatementInput> = {}, keyPath = pair.privatePath) {
  return attest(input(o), await fileSigner(keyPath));
}

async function keys(...pems: string[]): Promise<VerificationKey[]> {
  return resolveVerificationKeys(pems, { kms });
}

async function verifyWith(bytes: Uint8Array | undefined, o: Partial<VerifyProvenanceInput> = {}) {
  return verifyProvenance({
    project: 'rust-scorer' as ProjectName,
    version: '123' as Version,
    environment: 'prod' as EnvironmentName,
    envelope: bytes,
    source: 'file:///store/artifacts/rust-scorer/123/provenance.intoto.json',
    files: [{ name: 'bootstrap.zip', sha256: sha('a') }],
    policy: provenancePolicySchema.parse({ keys: ['x'], builders: ['acme/repo/.github/workflows/release.yml@refs/heads/*'], refs: ['refs/heads/main'] }),
    keys: await keys(pair.publicPem),
    ...o,
  });
}

function refusedRule(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ProvenanceRefusedError);
    expect((e as Error).message.split('\n')).toHaveLength(1);
    return (e as ProvenanceRefusedError).rule;
  }
  throw new Error('expected a refusal');
}

describe('DSSE PAE', () => {
  it('matches the DSSE protocol example byte for byte', () => {
    expect(pae('http://example.com/HelloWorld', Buffer.from('hello world')).toString()).toBe('DSSEv1 29 http://example.com/HelloWorld 11 hello world');
  });
  it('counts bytes, not characters', () => {
    expect(pae('t', Buffer.from('é')).toString()).toBe('DSSEv1 1 t 2 é');
  });
});

describe('statement', () => {
  it('is an in-toto Statement v1 with a SLSA Provenance v1 predicate', () => {
    const s = buildStatement(input({ imageDigest: `sha256:${sha('b')}` }));
    expect(s._type).toBe(STATEMENT_TYPE);
    expect(s.predicateType).toBe(SLSA_PROVENANCE_V1);
    expect(s.subject).toEqual([
      { name: 'bootstrap.zip', digest: { sha256: sha('a') } },
      { name: 'oci-image', digest: { sha256: sha('b') } },
    ]);
    expect(s.predicate.buildDefinition.buildType).toBe(BUILD_TYPE);
    expect(s.predicate.buildDefinition.externalParameters).toEqual({
      project: 'rust-scorer',
      target: 'build',
      version: '123',
      options: { release: true },
      ref: 'refs/heads/main',
    });
    expect(s.predicate.runDetails.metadata).toEqual({
      invocationId: 'https://github.com/acme/repo/actions/runs/1/attempts/1',
      startedOn: '2026-01-01T00:00:00.000Z',
      finishedOn: '2026-01-01T00:00:01.000Z',
    });
    expect(statementFacts(s)).toMatchObject({ builder: 'acme/repo/.github/workflows/release.yml@refs/heads/main', commit: 'c0ffee', ref: 'refs/heads/main' });
    expect(statementFacts(s).dirty).toBeUndefined();
    const dirty = buildStatement(
      input({ resolvedDependencies: [{ name: 'source', digest: { gitCommit: 'c0ffee' }, annotations: { dirty: true, uncommittedPaths: 2 } }] }),
    );
    expect(statementFacts(dirty)).toMatchObject({ commit: 'c0ffee', dirty: true });
  });
  it('rejects a malformed image digest', () => {
    expect(() => buildStatement(input({ imageDigest: 'sha256:nothex' }))).toThrow(RangeError);
  });
});

describe('signing keys', () => {
  it('parses BUILDONCE_SIGNING_KEY', () => {
    expect(parseSigningKeySpec('kms:alias/buildonce')).toEqual({ kind: 'kms', keyId: 'alias/buildonce' });
    expect(parseSigningKeySpec('file:./k.pem')).toEqual({ kind: 'file', path: './k.pem' });
    expect(() => parseSigningKeySpec('./k.pem')).toThrow(ProvenanceError);
  });
  it('refuses keys that are not P-256, in one line', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const p = join(pair.dir, 'ed.pem');
    writeFileSync(p, privateKey.export({ format: 'pem', type: 'pkcs8' }));
    await expect(fileSigner(p)).rejects.toThrow(/is a ed25519 key: provenance keys are ECDSA P-256/);
    await expect(fileSigner(join(pair.dir, 'missing.pem'))).rejects.toThrow(ProvenanceError);
    await expect(keys('-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----')).rejects.toThrow(ProvenanceError);
    await expect(keys('not-a-key')).rejects.toThrow(/is not a PEM public key, file:<path> or kms:/);
  });
  it('uses the SPKI fingerprint as keyid and resolves file: keys', async () => {
    const a = await signed();
    expect(a.envelope.signatures[0]!.keyid).toBe(keyFingerprint(pair.publicKey));
    const k = await resolveVerificationKeys([`file:${pair.publicPath}`], { kms });
    expect(k[0]!.id).toBe(`file:${pair.publicPath}`);
  });
});

describe('verifyProvenance', () => {
  it('accepts a correctly signed statement from an allowed builder and ref', async () => {
    const a = await signed();
    expect(a.envelope.payloadType).toBe(IN_TOTO_PAYLOAD_TYPE);
    const v = await verifyWith(a.bytes);
    expect(v.record).toEqual({
      signed: true,
      verified: true,
      rules: ['present', 'envelope', 'signature', 'statement', 'subject', 'builder', 'ref'],
      key: keyFingerprint(pair.publicKey),
      builder: 'acme/repo/.github/workflows/release.yml@refs/heads/main',
      ref: 'refs/heads/main',
      commit: 'c0ffee',
    });
  });

  it('accepts a P1363 (r||s) signature as well as DER', async () => {
    const a = await signed();
    const { sign } = await import('node:crypto');
    const { createPrivateKey } = await import('node:crypto');
    const { readFileSync } = await import('node:fs');
    const raw = sign('sha256', pae(a.envelope.payloadType, envelopePayload(a.envelope)), {
      key: createPrivateKey(readFileSync(pair.privatePath)),
      dsaEncoding: 'ieee-p1363',
    });
    expect(raw).toHaveLength(64);
    const bytes = serializeEnvelope({ ...a.envelope, signatures: [{ sig: raw.toString('base64') }] });
    expect((await verifyWith(bytes)).record.verified).toBe(true);
  });

  it('a missing envelope is refused when required and recorded as unsigned otherwise', async () => {
    expect(refusedRule(() => verifyProvenance({ ...baseSync(), envelope: undefined }))).toBe('present');
    const v = verifyProvenance({ ...baseSync(), envelope: undefined, policy: { required: false, keys: ['x'], builders: [], refs: [] } });
    expect(v.record).toEqual({ signed: false, verified: false, rules: [] });
  });

  it('refuses malformed JSON, a non-DSSE document and a foreign payloadType', async () => {
    expect(refusedRule(() => verifyProvenance({ ...baseSync(), envelope: Buffer.from('{"payloadType": ') }))).toBe('envelope');
    expect(refusedRule(() => verifyProvenance({ ...baseSync(), envelope: Buffer.from('{"hello":1}') }))).toBe('envelope');
    const a = await signed();
    expect(refusedRule(() => verifyProvenance({ ...baseSync(), envelope: serializeEnvelope({ ...a.envelope, payloadType: 'text/plain' }) }))).toBe('envelope');
  });

  it('refuses a payload edited after signing and a signature by another key', async () => {
    const a = await signed();
    const stmt = JSON.parse(envelopePayload(a.envelope).toString());
    stmt.predicate.runDetails.builder.id = 'acme/repo/.github/workflows/release.yml@refs/heads/main ';
    const edited = serializeEnvelope({ ...a.envelope, payload: Buffer.from(JSON.stringify(stmt)).toString('base64') });
    expect(refusedRule(() => verifyProvenance({ ...baseSync(), envelope: edited }))).toBe('signature');
    const byOther = await signed({}, other.privatePath);
    expect(refusedRule(() => verifyProvenance({ ...baseSync(), envelope: byOther.bytes }))).toBe('signature');
    expect(refusedRule(() => verifyProvenance({ ...baseSync(), envelope: serializeEnvelope({ ...a.envelope, signatures: [] }) }))).toBe('signature');
  });

  it('refuses a statement for another version, and subject digests that differ from the stored files', async () => {
    expect(refusedRule(() => verifyProvenance({ ...baseSync(), version: '124' as Version }))).toBe('statement');
    const wrong = await signed({ files: [{ name: 'bootstrap.zip', sha256: sha('c') }] });
    expect(refusedRule(() => verifyProvenance({ ...baseSync(), envelope: wrong.bytes }))).toBe('subject');
    const extra = await signed({
      files: [
        { name: 'bootstrap.zip', sha256: sha('a') },
        { name: 'other.zip', sha256: sha('d') },
      ],
    });
    expect(refusedRule(() => verifyProvenance({ ...baseSync(), envelope: extra.bytes }))).toBe('subject');
    expect(
      refusedRule(() =>
        verifyProvenance({
          ...baseSync(),
          files: [
            { name: 'bootstrap.zip', sha256: sha('a') },
            { name: 'more.bin', sha256: sha('e') },
          ],
        }),
      ),
    ).toBe('subject');
  });

  it('refuses builders and refs that are not allowed', async () => {
    const local = await signed({ builderId: 'local:laptop' });
    expect(refusedRule(() => verifyProvenance({ ...baseSync(), envelope: local.bytes }))).toBe('builder');
    const branch = await signed({ ref: 'refs/heads/feature', builderId: 'acme/repo/.github/workflows/release.yml@refs/heads/feature' });
    expect(refusedRule(() => verifyProvenance({ ...baseSync(), envelope: branch.bytes }))).toBe('ref');
    const noRef = await signed({ ref: undefined });
    expect(refusedRule(() => verifyProvenance({ ...baseSync(), envelope: noRef.bytes }))).toBe('ref');
  });

  let base: VerifyProvenanceInput | undefined;
  function baseSync(): VerifyProvenanceInput {
    if (!base) throw new Error('base not ready');
    return { ...base };
  }
  // the shared input, built once (keys resolve asynchronously)
  beforeAll(async () => {
    base = {
      project: 'rust-scorer' as ProjectName,
      version: '123' as Version,
      environment: 'prod' as EnvironmentName,
      envelope: (await signed()).bytes,
      source: 'file:///store/artifacts/rust-scorer/123/provenance.intoto.json',
      files: [{ name: 'bootstrap.zip', sha256: sha('a') }],
      policy: provenancePolicySchema.parse({ keys: ['x'], builders: ['acme/repo/.github/workflows/release.yml@refs/heads/*'], refs: ['refs/heads/main'] }),
      keys: await keys(pair.publicPem),
    };
  });
});

describe('patterns', () => {
  it('matches exactly or with * wildcards only', () => {
    expect(matchesPattern('refs/heads/main', 'refs/heads/main')).toBe(true);
    expect(matchesPattern('refs/heads/main', 'refs/heads/mainline')).toBe(false);
    expect(matchesPattern('refs/tags/v*', 'refs/tags/v1.2.3')).toBe(true);
    expect(matchesPattern('a.b', 'aXb')).toBe(false);
  });
  it('defaults: required, any builder, any ref; keys are mandatory', () => {
    expect(provenancePolicySchema.parse({ keys: ['k'] })).toEqual({ required: true, keys: ['k'], builders: [], refs: [] });
    expect(provenancePolicySchema.safeParse({ required: true }).success).toBe(false);
  });
  it('parseEnvelope names the source', () => {
    expect(() => parseEnvelope('nope', 'file:///x/provenance.intoto.json')).toThrow(/^file:\/\/\/x\/provenance.intoto.json is not JSON/);
  });
});

describe('build facts', () => {
  it('locally: builder local:<host>, commit, ref and work-tree state from one git call; lock files by workspace-relative path, never absolute', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'buildonce-facts-'));
    try {
      const git = (...a: string[]) => gitIn(dir, ...a);
      git('init', '-q', '-b', 'trunk');
      writeFileSync(join(dir, 'package-lock.json'), 'npm');
      mkdirSync(join(dir, 'app'));
      writeFileSync(join(dir, 'app/Cargo.lock'), 'cargo');
      git('add', '-A');
      git('commit', '-qm', 'one');
      const c = await buildContextFromEnv(dir, {}, new Date(5));
      expect(c).toMatchObject({
        builderId: `local:${hostname()}`,
        invocationId: `local:${hostname()}:${process.pid}:5`,
        ref: 'refs/heads/trunk',
        commit: git('rev-parse', 'HEAD'),
      });
      expect(c.repository).toBeUndefined();
      const locks = await lockFileDigests([dir, join(dir, 'app')]);
      expect(locks).toEqual([
        { name: 'package-lock.json', digest: { sha256: createHash('sha256').update('npm').digest('hex') } },
        { name: 'app/Cargo.lock', digest: { sha256: createHash('sha256').update('cargo').digest('hex') } },
      ]);
      const clean = resolvedDependencies({ context: c, lockFiles: locks, toolchain: 'cargo 1.95' });
      expect(clean[0]).toEqual({ name: 'source', digest: { gitCommit: c.commit } });
      expect(c.uncommittedPaths).toBeUndefined();
      expect(JSON.stringify(clean)).not.toContain(dir);

      // every kind of difference from the commit makes the tree dirty: modified, staged, deleted, untracked
      for (const [change, undo] of [
        [() => writeFileSync(join(dir, 'package-lock.json'), 'npm 2'), () => git('checkout', '-q', '--', 'package-lock.json')],
        [
          () => {
            writeFileSync(join(dir, 'app/new.rs'), '');
            git('add', 'app/new.rs');
          },
          () => {
            git('rm', '-q', '--cached', 'app/new.rs');
            rmSync(join(dir, 'app/new.rs'));
          },
        ],
        [() => rmSync(join(dir, 'app/Cargo.lock')), () => git('checkout', '-q', '--', 'app/Cargo.lock')],
        [() => writeFileSync(join(dir, 'untracked.txt'), 'x'), () => rmSync(join(dir, 'untracked.txt'))],
      ] as const) {
        change();
        const d = await buildContextFromEnv(dir, {});
        expect(d.uncommittedPaths).toBe(1);
        const source = resolvedDependencies({ context: d, lockFiles: [], toolchain: 't' })[0];
        expect(source).toEqual({ name: 'source', digest: { gitCommit: c.commit }, annotations: { dirty: true, uncommittedPaths: 1 } });
        undo();
        expect((await buildContextFromEnv(dir, {})).uncommittedPaths).toBeUndefined();
      }
      // ignored files (build output) are not changes
      writeFileSync(join(dir, '.gitignore'), 'dist/\n');
      git('add', '.gitignore');
      git('commit', '-qm', 'ignore dist');
      mkdirSync(join(dir, 'dist'));
      writeFileSync(join(dir, 'dist/out.zip'), 'zip');
      expect((await buildContextFromEnv(dir, {})).uncommittedPaths).toBeUndefined();
      git('checkout', '-q', '--detach');
      expect((await buildContextFromEnv(dir, {})).ref).toBeUndefined();
      const none = await buildContextFromEnv(tmpdir() + '/does-not-exist', {});
      expect(none.commit).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('in GitHub Actions: the workflow ref is the builder, commit and ref come from the environment', async () => {
    const c = await buildContextFromEnv('/nonexistent', {
      GITHUB_ACTIONS: 'true',
      GITHUB_SHA: 'c0ffee',
      GITHUB_REF: 'refs/heads/main',
      GITHUB_REPOSITORY: 'acme/repo',
      GITHUB_RUN_ID: '7',
      GITHUB_RUN_ATTEMPT: '3',
      GITHUB_WORKFLOW_REF: 'acme/repo/.github/workflows/release.yml@refs/heads/main',
      GITHUB_EVENT_NAME: 'push',
      GITHUB_REPOSITORY_ID: '99',
    });
    expect(c).toEqual({
      builderId: 'acme/repo/.github/workflows/release.yml@refs/heads/main',
      invocationId: 'https://github.com/acme/repo/actions/runs/7/attempts/3',
      ref: 'refs/heads/main',
      commit: 'c0ffee',
      repository: 'git+https://github.com/acme/repo',
      internalParameters: { eventName: 'push', repositoryId: '99' },
    });
  });
});
