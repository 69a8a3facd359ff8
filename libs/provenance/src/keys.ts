import { createHash, createPrivateKey, createPublicKey, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { isAbsolute, resolve } from 'node:path';
import type { KMSClient } from '@aws-sdk/client-kms';
import { ProvenanceError } from './errors';

// the KMS SDK loads on first use (kept out of the executor bundle like every AWS SDK package)
const lazyRequire = createRequire(__filename);
const kmsSdk = () => lazyRequire('@aws-sdk/client-kms') as typeof import('@aws-sdk/client-kms');

/**
 * Signing and verification keys: ECDSA over NIST P-256 with SHA-256 (AWS KMS `ECC_NIST_P256` /
 * `ECDSA_SHA_256`, https://docs.aws.amazon.com/kms/latest/APIReference/API_Sign.html). All
 * cryptography is node:crypto; signatures are stored ASN.1 DER (what KMS and `openssl dgst` produce);
 * verification also accepts the 64-byte IEEE P1363 (r||s) form via node's `dsaEncoding`.
 */

/** Signs DSSE PAE bytes. */
export interface Signer {
  /** the envelope's `keyid` hint: the KMS key ARN, or `sha256:<hex of the SPKI DER>` for a PEM key */
  readonly keyid: string;
  /** for logs: `kms:<key id>` or `file:<path>` */
  readonly describe: string;
  /**
   * ECDSA P-256 / SHA-256 signature of `data`, ASN.1 DER encoded.
   * @throws ProvenanceError when the key cannot sign (KMS access, disabled key, wrong key spec)
   */
  sign(data: Buffer): Promise<Buffer>;
}

/** A public key allowed to verify, with the config entry it came from. */
export interface VerificationKey {
  /** the config entry (`kms:<id>`, `file:<path>`) or `sha256:<hex>` for inline PEM */
  id: string;
  key: KeyObject;
}

/** `sha256:<hex>` of a public key's SPKI DER: the keyid of PEM keys. */
export function keyFingerprint(pub: KeyObject): string {
  return `sha256:${createHash('sha256')
    .update(pub.export({ format: 'der', type: 'spki' }))
    .digest('hex')}`;
}

function assertP256(k: KeyObject, what: string): void {
  if (k.asymmetricKeyType !== 'ec' || k.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    const got = k.asymmetricKeyType === 'ec' ? `EC ${k.asymmetricKeyDetails?.namedCurve}` : k.asymmetricKeyType;
    throw new ProvenanceError(`${what} is a ${got} key: provenance keys are ECDSA P-256 (openssl ecparam -name prime256v1 -genkey -noout -out key.pem)`);
  }
}

/**
 * A signer from a PEM private key file (PKCS#8 or SEC1 `EC PRIVATE KEY`, P-256).
 * @throws ProvenanceError when the file is missing, not a private key, or not P-256
 */
export async function fileSigner(path: string): Promise<Signer> {
  const pem = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new ProvenanceError(
      `signing key file ${path} cannot be read (${e.code ?? e.message}): fix BUILDONCE_SIGNING_KEY=file:<path to a PEM P-256 private key>`,
    );
  });
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (e) {
    throw new ProvenanceError(`signing key file ${path} is not a PEM private key (${(e as Error).message.split('\n')[0]}): fix BUILDONCE_SIGNING_KEY`);
  }
  assertP256(key, `signing key ${path}`);
  const keyid = keyFingerprint(createPublicKey(key));
  return {
    keyid,
    describe: `file:${path}`,
    sign: async (data) => cryptoSign('sha256', data, { key, dsaEncoding: 'der' }),
  };
}

/** Largest message KMS `Sign` accepts with `MessageType: RAW`, bytes. */
export const KMS_RAW_LIMIT = 4096;

/** One line for a failed KMS call (the SDK error's name and message). */
function kmsFailure(action: string, keyId: string, e: unknown, fix: string): ProvenanceError {
  const err = e as Error & { name?: string };
  return new ProvenanceError(`KMS ${action} with key ${keyId} failed: ${err.name ?? 'Error'}: ${(err.message ?? String(e)).split('\n')[0]}; ${fix}`, {
    cause: e,
  });
}

/**
 * A signer backed by an AWS KMS asymmetric key (`ECC_NIST_P256`, usage `SIGN_VERIFY`) with
 * `ECDSA_SHA_256`; KMS returns a DER signature. Needs only `kms:Sign` on the key. Data up to
 * {@link KMS_RAW_LIMIT} bytes is sent as is (`MessageType: RAW`, KMS hashes it); larger data is
 * hashed here and sent as `MessageType: DIGEST` (same signature, KMS's RAW size limit).
 * (moto_server implements RAW only, which is why tests stay below the limit.)
 * @param keyId key id, key ARN, alias name (`alias/…`) or alias ARN
 */
export function kmsSigner(kms: KMSClient, keyId: string): Signer {
  let keyid = keyId;
  return {
    get keyid() {
      return keyid;
    },
    describe: `kms:${keyId}`,
    async sign(data) {
      const { SignCommand } = kmsSdk();
      const raw = data.length <= KMS_RAW_LIMIT;
      const message = raw ? data : createHash('sha256').update(data).digest();
      let out;
      try {
        out = await kms.send(new SignCommand({ KeyId: keyId, Message: message, MessageType: raw ? 'RAW' : 'DIGEST', SigningAlgorithm: 'ECDSA_SHA_256' }));
      } catch (e) {
        throw kmsFailure(
          'Sign',
          keyId,
          e,
          'the publish role needs kms:Sign on an ECC_NIST_P256 SIGN_VERIFY key (BUILDONCE_SIGNING_KEY=kms:<key-id|arn|alias>)',
        );
      }
      if (!out.Signature) throw new ProvenanceError(`KMS Sign with key ${keyId} returned no signature`);
      if (out.KeyId) keyid = out.KeyId;
      return Buffer.from(out.Signature);
    },
  };
}

/** Parses `BUILDONCE_SIGNING_KEY`: `kms:<key-id|arn|alias>` or `file:<path>`. @throws ProvenanceError otherwise */
export function parseSigningKeySpec(spec: string): { kind: 'kms'; keyId: string } | { kind: 'file'; path: string } {
  const m = /^(kms|file):(.+)$/.exec(spec.trim());
  if (!m) throw new ProvenanceError(`BUILDONCE_SIGNING_KEY="${spec}" must be kms:<key-id|arn|alias> or file:<path to a PEM P-256 private key>`);
  return m[1] === 'kms' ? { kind: 'kms', keyId: m[2]! } : { kind: 'file', path: m[2]! };
}

/**
 * The signer `BUILDONCE_SIGNING_KEY` names (relative file paths resolve from `cwd`).
 * @param kms creates the KMS client (from `@buildonce/aws`) only when a KMS key is named
 * @throws ProvenanceError for a malformed spec or an unusable key file
 */
export async function signerFromSpec(spec: string, o: { kms: () => KMSClient; cwd?: string }): Promise<Signer> {
  const s = parseSigningKeySpec(spec);
  if (s.kind === 'kms') return kmsSigner(o.kms(), s.keyId);
  return fileSigner(isAbsolute(s.path) ? s.path : resolve(o.cwd ?? process.cwd(), s.path));
}

/**
 * Resolves verification keys from an environment's `provenance.keys`:
 * - PEM text (`-----BEGIN PUBLIC KEY-----…`), id `sha256:<fingerprint>`;
 * - `file:<path>` to a PEM public key (relative to `cwd`, the workspace root);
 * - `kms:<key-id|arn|alias>`, or a bare KMS ARN / `alias/…`: the public key from KMS `GetPublicKey`
 *   (needs only `kms:GetPublicKey`).
 * @throws ProvenanceError naming the entry that cannot be used
 */
export async function resolveVerificationKeys(specs: readonly string[], o: { kms: () => KMSClient; cwd?: string }): Promise<VerificationKey[]> {
  const out: VerificationKey[] = [];
  for (const spec of specs) {
    const s = spec.trim();
    if (s.startsWith('-----BEGIN')) {
      const key = publicKeyFrom(s, 'an inline PEM key of provenance.keys');
      out.push({ id: keyFingerprint(key), key });
    } else if (s.startsWith('file:')) {
      const path = s.slice(5);
      const abs = isAbsolute(path) ? path : resolve(o.cwd ?? process.cwd(), path);
      const pem = await readFile(abs, 'utf8').catch((e: NodeJS.ErrnoException) => {
        throw new ProvenanceError(`provenance key ${s} cannot be read (${e.code ?? e.message}): fix provenance.keys in buildonce.json`);
      });
      out.push({ id: s, key: publicKeyFrom(pem, `provenance key ${s}`) });
    } else {
      const keyId = s.startsWith('kms:') ? s.slice(4) : s;
      if (!/^(arn:aws[a-z-]*:kms:|alias\/|[0-9a-f-]{36}$|mrk-)/.test(keyId)) {
        throw new ProvenanceError(
          `provenance key "${s.slice(0, 60)}" is not a PEM public key, file:<path> or kms:<key-id|arn|alias>: fix provenance.keys in buildonce.json`,
        );
      }
      const { GetPublicKeyCommand } = kmsSdk();
      let r;
      try {
        r = await o.kms().send(new GetPublicKeyCommand({ KeyId: keyId }));
      } catch (e) {
        throw kmsFailure('GetPublicKey', keyId, e, 'the promote role needs kms:GetPublicKey on the key (or put the PEM public key in provenance.keys)');
      }
      if (!r.PublicKey) throw new ProvenanceError(`KMS GetPublicKey with key ${keyId} returned no public key`);
      const key = createPublicKey({ key: Buffer.from(r.PublicKey), format: 'der', type: 'spki' });
      assertP256(key, `KMS key ${keyId}`);
      out.push({ id: `kms:${keyId}`, key });
    }
  }
  return out;
}

function publicKeyFrom(pem: string, what: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (e) {
    throw new ProvenanceError(`${what} is not a PEM public key (${(e as Error).message.split('\n')[0]}): fix provenance.keys in buildonce.json`);
  }
  assertP256(key, what);
  return key;
}

/**
 * True when `sig` is a valid ECDSA P-256 / SHA-256 signature of `data` by `key`. DER signatures and
 * 64-byte P1363 (r||s) signatures are both accepted (node:crypto `dsaEncoding`).
 */
export function verifySignature(key: KeyObject, data: Buffer, sig: Buffer): boolean {
  const check = (dsaEncoding: 'der' | 'ieee-p1363') => {
    try {
      return cryptoVerify('sha256', data, { key, dsaEncoding }, sig);
    } catch {
      return false;
    }
  };
  return check('der') || (sig.length === 64 && check('ieee-p1363'));
}
