import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Test helper (not exported from the package index): a fresh ECDSA P-256 key pair written as PEM files
 * (PKCS#8 private key, SPKI public key) into a new temp directory the caller removes.
 */
export function makeKeyPair(dir = mkdtempSync(join(tmpdir(), 'buildonce-key-'))): {
  dir: string;
  privatePath: string;
  publicPath: string;
  publicPem: string;
  publicKey: KeyObject;
} {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const privatePath = join(dir, 'signing.pem');
  const publicPath = join(dir, 'signing.pub.pem');
  const publicPem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
  writeFileSync(privatePath, privateKey.export({ format: 'pem', type: 'pkcs8' }));
  writeFileSync(publicPath, publicPem);
  return { dir, privatePath, publicPath, publicPem, publicKey };
}
