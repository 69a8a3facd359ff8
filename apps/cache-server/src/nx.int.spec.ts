import { stripVTControlCharacters } from 'node:util';
import { appendFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { captureLogger, makeTempWorkspace, sha256Hex, startTestIssuer, type TempWorkspace, type TestIssuer } from '@buildonce/testing';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCacheStore, parseOidc } from './config';
import { startServer, type RunningServer } from './start';
import { parseTokens } from './tokens';

/** Nx's line for a build restored from the remote cache (other tasks, e.g. executors:bundle, may be too). */
const SCORER_FROM_REMOTE = /nx run rust-scorer:build\s+\[remote cache\]/;

/**
 * The real nx CLI (nx 23, HttpRemoteCache from NX_SELF_HOSTED_REMOTE_CACHE_SERVER) against the server: rust-scorer's
 * cached `build` target (cargo-lambda-zip) in separate workspace copies at different paths, each with its own empty
 * NX_CACHE_DIRECTORY. nx runs as an async child process: the server lives in this process.
 */

const CARGO_OFFLINE_REGISTRY = '/usr/share/cargo/registry';
const T = {
  ciMain: 'ci-main-rw-4d8e2a6c0f1b3579',
  dev: 'dev-ro-9b1f3d5e7a2c4680',
  pr7: 'pr7-rw-1a3c5e7b9d2f4680',
  pr7ro: 'pr7-ro-8e6c4a2f0d1b3579',
};

const OUT = 'dist/apps/rust-scorer';

describe('real nx CLI with the cache server (rust-scorer:build)', () => {
  const logs = captureLogger();
  let server: RunningServer;
  let storeRoot: string;
  let a: TempWorkspace;
  let issuer: TestIssuer;
  const AUD = 'buildonce-cache-nx-test';
  const dirs: string[] = [];

  beforeAll(async () => {
    storeRoot = mkdtempSync(join(tmpdir(), 'cache-nx-store-'));
    issuer = await startTestIssuer();
    server = await startServer(
      {
        port: 0,
        host: '127.0.0.1',
        maxBytes: 256 * 1024 * 1024,
        store: parseCacheStore(storeRoot, '/'),
        tokens: parseTokens(`${T.ciMain}:read-write,${T.dev}:read-only,${T.pr7}:read-write:pr-7,${T.pr7ro}:read-only:pr-7`),
        spoolDir: tmpdir(),
        shutdownTimeoutMs: 5000,
        // OIDC beside the static tokens, as a team would run it
        oidc: parseOidc({ BUILDONCE_CACHE_OIDC_ISSUER: issuer.url, BUILDONCE_CACHE_OIDC_AUDIENCE: AUD, BUILDONCE_CACHE_OIDC_REPOSITORIES: 'acme/app' }),
      },
      logs.logger,
    );
    a = makeTempWorkspace('cache-nx-a-');
  });

  afterAll(async () => {
    await server?.close();
    await issuer?.close();
    a?.dispose();
    for (const d of [storeRoot, ...dirs]) if (d) rmSync(d, { recursive: true, force: true });
  });

  /** Copies a workspace (sources, .git, the node_modules symlink; no dist/target/.nx) to a new path. */
  function cloneOf(src: string, prefix: string): string {
    const dst = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(dst);
    cpSync(src, dst, {
      recursive: true,
      verbatimSymlinks: true,
      filter: (p) => {
        const rel = p.slice(src.length + 1);
        return !(rel === 'dist' || rel === '.nx' || rel.startsWith('dist/') || rel.startsWith('.nx/') || rel.split('/').includes('target'));
      },
    });
    return dst;
  }

  /** `nx run rust-scorer:build` in `root` with a token and a fresh, empty local cache directory. */
  async function nxBuild(root: string, token: string): Promise<string> {
    const cacheDir = mkdtempSync(join(tmpdir(), 'cache-nx-local-'));
    dirs.push(cacheDir);
    // NX_* from an outer nx (this suite itself runs under `nx run cache-server:test`, maybe with
    // --skip-nx-cache → NX_SKIP_NX_CACHE) must not leak into the nx under test
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('NX_')));
    const r = await execa('npx', ['nx', 'run', 'rust-scorer:build'], {
      cwd: root,
      all: true,
      reject: false,
      extendEnv: false,
      env: {
        ...inherited,
        NX_DAEMON: 'false',
        NX_NO_CLOUD: 'true',
        NX_TUI: 'false',
        NX_SELF_HOSTED_REMOTE_CACHE_SERVER: server.url,
        NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN: token,
        NX_CACHE_DIRECTORY: cacheDir,
        BUILDONCE_CARGO_OFFLINE_REGISTRY: CARGO_OFFLINE_REGISTRY,
      },
    });
    const output = r.all ?? '';
    if (r.exitCode !== 0) throw new Error(`nx run rust-scorer:build failed in ${root} (exit ${r.exitCode}):\n${output}`);
    return output;
  }

  const version = (root: string) => (JSON.parse(readFileSync(join(root, OUT, 'artifact.json'), 'utf8')) as { version: string }).version;
  const zipSha = (root: string) => sha256Hex(readFileSync(join(root, OUT, 'bootstrap.zip')));
  const cargoRan = (root: string) => existsSync(join(root, 'apps/rust-scorer/target'));
  const requests = (hash: string) => logs.records().filter((r) => r.msg === 'cache request' && r.hash === hash);

  it('clone A (read-write) builds and uploads; clone B (read-only, empty local cache, other path) restores it without cargo', async () => {
    const outA = await nxBuild(a.root, T.ciMain);
    expect(stripVTControlCharacters(outA)).not.toMatch(SCORER_FROM_REMOTE);
    expect(cargoRan(a.root)).toBe(true);
    const hash = version(a.root);
    expect(hash).toMatch(/^\d+$/);
    expect(requests(hash).map((r) => [r.method, r.status, r.outcome, r.namespace])).toEqual([
      ['GET', 404, 'miss', 'trusted'],
      ['PUT', 200, 'stored', 'trusted'],
    ]);

    const b = cloneOf(a.root, 'cache-nx-b-');
    expect(cargoRan(b)).toBe(false);
    const outB = await nxBuild(b, T.dev);
    expect(stripVTControlCharacters(outB)).toMatch(SCORER_FROM_REMOTE);
    expect(cargoRan(b)).toBe(false);
    expect(version(b)).toBe(hash);
    expect(zipSha(b)).toBe(zipSha(a.root));
    expect(
      requests(hash)
        .slice(2)
        .map((r) => [r.method, r.status, r.outcome, r.namespace]),
    ).toEqual([['GET', 200, 'hit', 'trusted']]);
  });

  it('a pr-7 upload is restored by another pr-7 run, but a trusted run builds (and can still store the trusted entry)', async () => {
    // a source change gives this test its own hash, absent from the trusted namespace
    const c = cloneOf(a.root, 'cache-nx-pr7-c-');
    appendFileSync(join(c, 'apps/rust-scorer/src/lib.rs'), '\n// pr-7: comment-only change, new task hash\n');
    const outC = await nxBuild(c, T.pr7);
    expect(stripVTControlCharacters(outC)).not.toMatch(SCORER_FROM_REMOTE);
    expect(cargoRan(c)).toBe(true);
    const hash = version(c);
    expect(hash).not.toBe(version(a.root));
    expect(requests(hash).map((r) => [r.method, r.status, r.outcome, r.namespace])).toEqual([
      ['GET', 404, 'miss', 'pr-7'],
      ['PUT', 200, 'stored', 'pr-7'],
    ]);

    const d = cloneOf(c, 'cache-nx-pr7-d-');
    const outD = await nxBuild(d, T.pr7ro);
    expect(stripVTControlCharacters(outD)).toMatch(SCORER_FROM_REMOTE);
    expect(cargoRan(d)).toBe(false);
    expect(zipSha(d)).toBe(zipSha(c));

    const e = cloneOf(c, 'cache-nx-trusted-e-');
    const outE = await nxBuild(e, T.ciMain);
    expect(stripVTControlCharacters(outE)).not.toMatch(SCORER_FROM_REMOTE);
    expect(cargoRan(e)).toBe(true);
    expect(version(e)).toBe(hash);
    // the trusted GET missed although pr-7 holds this hash, and the PR's earlier upload did not block the trusted one
    expect(
      requests(hash)
        .slice(3)
        .map((r) => [r.method, r.status, r.outcome, r.namespace]),
    ).toEqual([
      ['GET', 404, 'miss', 'trusted'],
      ['PUT', 200, 'stored', 'trusted'],
    ]);
  });

  it('OIDC: a pull_request ID token restores the trusted entry and stores its own in pr-9; trusted never sees it', async () => {
    const hour = Math.floor(Date.now() / 1000) + 3600;
    const prToken = await issuer.github(AUD, { event_name: 'pull_request', ref: 'refs/pull/9/merge', exp: hour });
    const mainToken = await issuer.github(AUD, { exp: hour });

    // the entry clone A stored as trusted is restored by the PR's nx run (read of trusted)
    const f = cloneOf(a.root, 'cache-nx-oidc-f-');
    const outF = await nxBuild(f, prToken);
    expect(stripVTControlCharacters(outF)).toMatch(SCORER_FROM_REMOTE);
    expect(cargoRan(f)).toBe(false);
    expect(zipSha(f)).toBe(zipSha(a.root));
    expect(requests(version(a.root)).at(-1)).toMatchObject({
      method: 'GET',
      status: 200,
      outcome: 'hit:trusted',
      namespace: 'pr-9',
      identity: 'oidc:acme/app pull_request refs/pull/9/merge',
    });

    // a change in the PR: built, and stored in pr-9
    const g = cloneOf(a.root, 'cache-nx-oidc-g-');
    appendFileSync(join(g, 'apps/rust-scorer/src/lib.rs'), '\n// pr-9: comment-only change, new task hash\n');
    const outG = await nxBuild(g, prToken);
    expect(stripVTControlCharacters(outG)).not.toMatch(SCORER_FROM_REMOTE);
    const hash = version(g);
    expect(requests(hash).map((r) => [r.method, r.status, r.outcome, r.namespace])).toEqual([
      ['GET', 404, 'miss', 'pr-9'],
      ['PUT', 200, 'stored', 'pr-9'],
    ]);

    // a trusted (push to main) identity never sees the PR's entry; the PR does
    const rawGet = (token: string) => fetch(`${server.url}/v1/cache/${hash}`, { headers: { authorization: `Bearer ${token}` } });
    expect((await rawGet(mainToken)).status).toBe(404);
    expect((await rawGet(T.ciMain)).status).toBe(404);
    const own = await rawGet(prToken);
    expect(own.status).toBe(200);
    expect(own.headers.get('x-buildonce-cache-namespace')).toBe('pr-9');
    await own.arrayBuffer();
    expect(logs.lines.join('\n')).not.toContain(prToken);
  });
});
