import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, UnsecuredJWT, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCacheStore, parseOidc } from './config';
import { startServer, type RunningServer } from './start';
import { captureLogger, nxLikeBody, servedEntry, sha256Hex, startTestIssuer, type TestIssuer, newCacheHash } from '@buildonce/testing';
import { parseTokens } from './tokens';

const AUD = 'buildonce-cache-test';
const STATIC = 'static-trusted-rw-0c2f7a9e4b1d';

describe('OIDC mode: GitHub Actions ID tokens from a local JWKS issuer', () => {
  let issuer: TestIssuer;
  let server: RunningServer;
  let root: string;
  const logs = captureLogger();
  const newHash = newCacheHash;

  beforeAll(async () => {
    issuer = await startTestIssuer();
    root = mkdtempSync(join(tmpdir(), 'cache-oidc-'));
    const oidc = parseOidc({ BUILDONCE_CACHE_OIDC_ISSUER: issuer.url, BUILDONCE_CACHE_OIDC_AUDIENCE: AUD, BUILDONCE_CACHE_OIDC_REPOSITORIES: 'acme/app' })!;
    server = await startServer(
      {
        port: 0,
        host: '127.0.0.1',
        maxBytes: 8 * 1024 * 1024,
        store: parseCacheStore(root, '/'),
        tokens: parseTokens(`${STATIC}:read-write`),
        spoolDir: tmpdir(),
        shutdownTimeoutMs: 5000,
        oidc: { ...oidc, jwksCooldownMs: 0 },
      },
      logs.logger,
    );
  });

  afterAll(async () => {
    await server?.close();
    await issuer?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  const url = (hash: string) => `${server.url}/v1/cache/${hash}`;
  const put = (hash: string, body: Buffer, token: string) =>
    fetch(url(hash), { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, body });
  const get = (hash: string, token: string) => fetch(url(hash), { headers: { authorization: `Bearer ${token}` } });
  const pr = (n: number, extra: Record<string, unknown> = {}) => issuer.github(AUD, { ref: `refs/pull/${n}/merge`, event_name: 'pull_request', ...extra });
  const push = (extra: Record<string, unknown> = {}) => issuer.github(AUD, extra);
  const now = () => Math.floor(Date.now() / 1000);

  it('a push to main of an allowed repository is trusted read-write', async () => {
    const hash = newHash();
    const body = nxLikeBody(1000);
    const token = await push();
    expect((await put(hash, body, token)).status).toBe(200);
    expect(await servedEntry(get(hash, STATIC))).toEqual({ status: 200, namespace: 'trusted', sha256: sha256Hex(body) });
    const line = logs.records().find((r) => r.msg === 'cache request' && r.hash === hash && r.method === 'PUT');
    expect(line).toMatchObject({ namespace: 'trusted', identity: 'oidc:acme/app push refs/heads/main' });
  });

  it('a pull_request token writes pr-7, reads trusted, and never writes trusted', async () => {
    const token = await pr(7);
    // reads trusted
    const trustedHash = newHash();
    const trustedBody = nxLikeBody(1500);
    expect((await put(trustedHash, trustedBody, STATIC)).status).toBe(200);
    expect(await servedEntry(get(trustedHash, token))).toEqual({ status: 200, namespace: 'trusted', sha256: sha256Hex(trustedBody) });

    // writes pr-7 only
    const hash = newHash();
    const body = nxLikeBody(1200);
    expect((await put(hash, body, token)).status).toBe(200);
    expect(await servedEntry(get(hash, token))).toEqual({ status: 200, namespace: 'pr-7', sha256: sha256Hex(body) });
    expect((await get(hash, STATIC)).status).toBe(404);
    expect((await get(hash, await push())).status).toBe(404);
    expect((await get(hash, await pr(8))).status).toBe(404);

    // a PR upload of a hash trusted already has goes to pr-7; trusted keeps its bytes
    expect((await put(trustedHash, nxLikeBody(900), token)).status).toBe(200);
    expect(await servedEntry(get(trustedHash, STATIC))).toEqual({ status: 200, namespace: 'trusted', sha256: sha256Hex(trustedBody) });
  });

  it.each<[string, () => Promise<string>]>([
    ['an age beyond BUILDONCE_CACHE_OIDC_MAX_TOKEN_AGE_SECONDS (1 h)', () => push({ iat: now() - 3800, nbf: now() - 3800, exp: now() - 3500 })],
    ['an iat in the future', () => push({ iat: now() + 600, nbf: now() + 600, exp: now() + 900 })],
    ['a wrong audience', () => issuer.github('someone-else', {})],
    ['a wrong issuer', () => push({ iss: 'https://token.actions.githubusercontent.com' })],
    ['a repository that is not allowed', () => push({ repository: 'evil/app' })],
    [
      'alg: none',
      async () =>
        new UnsecuredJWT({
          iss: issuer.url,
          aud: AUD,
          repository: 'acme/app',
          ref: 'refs/heads/main',
          event_name: 'push',
          iat: now(),
          exp: now() + 300,
        }).encode(),
    ],
    [
      'HS256 signed with the public key (algorithm confusion)',
      async () =>
        new SignJWT({ iss: issuer.url, aud: AUD, repository: 'acme/app', ref: 'refs/heads/main', event_name: 'push', iat: now(), exp: now() + 300 })
          .setProtectedHeader({ alg: 'HS256', kid: 'test-key-1' })
          .sign(new TextEncoder().encode(await issuer.publicPem())),
    ],
    [
      'an unknown kid',
      async () => {
        const { privateKey } = await generateKeyPair('RS256');
        return issuer.sign({ aud: AUD, repository: 'acme/app', ref: 'refs/heads/main', event_name: 'push' }, { kid: 'not-published', key: privateKey });
      },
    ],
    [
      'a tampered payload (pull request made to look like a push to main)',
      async () => {
        const [h, p, s] = (await pr(7)).split('.') as [string, string, string];
        const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
        const forged = Buffer.from(JSON.stringify({ ...claims, ref: 'refs/heads/main', event_name: 'push' })).toString('base64url');
        return `${h}.${forged}.${s}`;
      },
    ],
  ])('401 for a token with %s (GET and PUT), nothing stored', async (_name, make) => {
    const token = await make();
    const hash = newHash();
    const p = await put(hash, nxLikeBody(100), token);
    expect(p.status).toBe(401);
    expect(await p.text()).toMatch(/invalid or expired identity token/);
    expect((await get(hash, token)).status).toBe(401);
    expect((await get(hash, STATIC)).status).toBe(404);
    const all = logs.lines.join('\n');
    expect(all).not.toContain(token);
  });

  it('accepts a GitHub-shaped token (5 min exp) for the whole job: until iat + max token age', async () => {
    const token = await push({ iat: now() - 1800, nbf: now() - 2400, exp: now() - 1500 });
    expect((await get(newHash(), token)).status).toBe(404);
  });

  it('with BUILDONCE_CACHE_OIDC_MAX_TOKEN_AGE_SECONDS=0, exp is honoured (60 s skew)', async () => {
    const strict = await startServer(
      {
        port: 0,
        host: '127.0.0.1',
        maxBytes: 1 << 20,
        store: parseCacheStore(root, '/'),
        tokens: parseTokens('', { allowEmpty: true }),
        spoolDir: tmpdir(),
        shutdownTimeoutMs: 5000,
        oidc: {
          ...parseOidc({
            BUILDONCE_CACHE_OIDC_ISSUER: issuer.url,
            BUILDONCE_CACHE_OIDC_AUDIENCE: AUD,
            BUILDONCE_CACHE_OIDC_REPOSITORIES: 'acme/app',
            BUILDONCE_CACHE_OIDC_MAX_TOKEN_AGE_SECONDS: '0',
          })!,
          jwksCooldownMs: 0,
        },
      },
      captureLogger().logger,
    );
    try {
      const at = (token: string) => fetch(`${strict.url}/v1/cache/${newHash()}`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
      expect(await at(await push({ iat: now() - 400, nbf: now() - 400, exp: now() - 20 }))).toBe(404); // within the skew
      expect(await at(await push({ iat: now() - 900, nbf: now() - 900, exp: now() - 120 }))).toBe(401);
      expect(await at(await push({ nbf: now() + 300 }))).toBe(401);
    } finally {
      await strict.close();
    }
  });

  it.each<[string, Record<string, unknown>]>([
    ['a push to another branch', { ref: 'refs/heads/feature' }],
    ['pull_request_target on main (runs with the base ref)', { event_name: 'pull_request_target' }],
    ['workflow_dispatch on main', { event_name: 'workflow_dispatch' }],
    ['a pull_request event on a branch ref', { event_name: 'pull_request', ref: 'refs/heads/main' }],
  ])('403 for a valid token of %s', async (_name, claims) => {
    const token = await push(claims);
    expect((await get(newHash(), token)).status).toBe(403);
    expect((await put(newHash(), nxLikeBody(100), token)).status).toBe(403);
  });

  it('follows key rotation: a token signed with a newly published key is accepted after a JWKS refetch', async () => {
    const before = issuer.jwksFetches;
    await issuer.rotate();
    const token = await push();
    expect((await get(newHash(), token)).status).toBe(404);
    expect(issuer.jwksFetches).toBeGreaterThan(before);
    // cached: more requests with known keys fetch nothing
    const after = issuer.jwksFetches;
    for (let i = 0; i < 5; i++) expect((await get(newHash(), token)).status).toBe(404);
    expect(issuer.jwksFetches).toBe(after);
  });

  it('static tokens keep working beside OIDC', async () => {
    const hash = newHash();
    expect((await put(hash, nxLikeBody(100), STATIC)).status).toBe(200);
    expect((await get(hash, 'not-a-known-static-token')).status).toBe(401);
  });
});
