import { execFileSync } from 'node:child_process';
import { createSign, randomUUID, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startRegistry, type RegistryServer, pushTestBaseImage } from '@buildonce/testing';
import { RegistryClient } from './registry';
import { RegistryAuthError } from './errors';
import { buildImage } from './assemble';
import { pushImage, layoutDirOf } from './push';
import { parseImageReference } from './reference';
import type { ProjectName, Version } from '@buildonce/values';

/**
 * The distribution token flow for real: docker-registry with `auth.token` (JWTs verified against a
 * certificate written here) and a token server on loopback that checks basic credentials and signs
 * RS256 tokens with the certificate's key (x5c header), granting exactly the scopes asked for.
 */
let dir: string;
let registry: RegistryServer;
let tokenServer: Server;
let realm: string;
const tokenRequests: string[] = [];
const USER = 'ci';
const PASS = 's3cret';

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'buildonce-regauth-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
      '-days',
      '1',
      '-subj',
      '/CN=buildonce-test-token',
    ],
    { stdio: 'ignore' },
  );
  const key = await readFile(join(dir, 'key.pem'), 'utf8');
  const certDer = new X509Certificate(await readFile(join(dir, 'cert.pem'))).raw;
  const port = await freePort();
  realm = `http://127.0.0.1:${port}/token`;
  tokenServer = createServer((req, res) => {
    const url = new URL(req.url ?? '/', realm);
    tokenRequests.push(url.searchParams.getAll('scope').join(' '));
    const auth = req.headers.authorization ?? '';
    if (auth !== `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}`) {
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ details: 'bad credentials' }));
      return;
    }
    const access = url.searchParams.getAll('scope').map((s) => {
      const [type, name, actions] = s.split(':');
      return { type, name, actions: (actions ?? '').split(',').filter(Boolean) };
    });
    const now = Math.floor(Date.now() / 1000);
    const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', x5c: [certDer.toString('base64')] }));
    const claims = b64url(
      JSON.stringify({
        iss: 'buildonce-test',
        sub: USER,
        aud: url.searchParams.get('service'),
        exp: now + 300,
        nbf: now - 10,
        iat: now,
        jti: randomUUID(),
        access,
      }),
    );
    const sig = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(key);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `${header}.${claims}.${b64url(sig)}`, expires_in: 300 }));
  });
  await new Promise<void>((r) => tokenServer.listen(port, '127.0.0.1', () => r()));
  await writeFile(join(dir, 'bundle.pem'), await readFile(join(dir, 'cert.pem')));
  registry = await startRegistry({ tokenAuth: { realm, service: 'buildonce-registry', issuer: 'buildonce-test', rootCertBundle: join(dir, 'bundle.pem') } });
});

afterAll(async () => {
  await registry?.stop();
  await new Promise<void>((r) => (tokenServer ? tokenServer.close(() => r()) : r()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('registry token auth (distribution auth.token + a real token server)', () => {
  it('does the bearer dance with basic credentials, caches the token per scope, and mounts across repositories', async () => {
    const client = new RegistryClient({ registry: registry.host, scheme: 'http', credentials: { username: USER, password: PASS } });
    const base = await pushTestBaseImage(client);
    expect(tokenRequests).toContain('repository:lambda/provided:pull,push');
    const out = join(dir, 'out');
    const built = await buildImage({
      project: 'p' as ProjectName,
      version: '9' as Version,
      runtime: 'provided.al2023',
      baseImage: base.reference,
      platform: 'linux/amd64',
      layers: [{ name: 'f', files: [{ destination: '/var/runtime/bootstrap', bytes: Buffer.from('hi'), mode: 0o755 }] }],
      outDir: out,
      baseClient: client,
    });
    tokenRequests.length = 0;
    const r = await pushImage({ layoutDir: layoutDirOf(out), target: parseImageReference(`${registry.host}/app`), client, tags: ['9'] });
    expect(r).toMatchObject({ status: 'pushed', digest: built.image.digest, blobsMounted: 1, blobsUploaded: 2 });
    expect(tokenRequests).toEqual(expect.arrayContaining(['repository:app:pull', 'repository:app:pull,push repository:lambda/provided:pull']));
    // the token for a scope is reused: a second HEAD asks the token server nothing new
    const before = tokenRequests.length;
    expect((await client.headManifest('app', '9'))?.digest).toBe(built.image.digest);
    expect(tokenRequests.length).toBe(before);
  });

  it('anonymous or wrong credentials fail with one line naming the fix', async () => {
    const anon = new RegistryClient({ registry: registry.host, scheme: 'http' });
    const e1 = await anon.headManifest('app', '9').catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(RegistryAuthError);
    expect(String((e1 as Error).message)).toMatch(/token endpoint .* answered 401 .*BUILDONCE_REGISTRY_USERNAME/);
    const wrong = new RegistryClient({ registry: registry.host, scheme: 'http', credentials: { username: USER, password: 'nope' } });
    await expect(wrong.listTags('app')).rejects.toThrow(RegistryAuthError);
    expect(String((e1 as Error).message).split('\n')).toHaveLength(1);
  });
});
