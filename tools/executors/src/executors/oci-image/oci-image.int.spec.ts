import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '@buildonce/image';
import { pushTestBaseImage, makeTempWorkspace, startRegistry, type RegistryServer, type TempWorkspace } from '@buildonce/testing';

/**
 * apps/rust-scorer-image through the real nx CLI in a temp git workspace: real cargo (rust-scorer:build),
 * the oci-image build, publish to a real registry (docker-registry on a free port, stand-in base) and the
 * embedded store, a warm re-publish, promote to dev with the local target and resolve by digest.
 */
const cargoEnv = { BUILDONCE_CARGO_OFFLINE_REGISTRY: process.env.BUILDONCE_CARGO_OFFLINE_REGISTRY ?? '/usr/share/cargo/registry' };
let registry: RegistryServer;
let ws: TempWorkspace;
let cache: string;
let env: Record<string, string | undefined>;

function nx(args: string[]) {
  return ws.runResult('npx', ['nx', ...args, '--output-style=stream'], env);
}

beforeAll(async () => {
  registry = await startRegistry();
  const base = await pushTestBaseImage(new RegistryClient({ registry: registry.host, scheme: 'http' }));
  ws = makeTempWorkspace('buildonce-image-ws-');
  const pj = join(ws.root, 'apps/rust-scorer-image/project.json');
  writeFileSync(pj, readFileSync(pj, 'utf8').replace(/127\.0\.0\.1:5000\/lambda\/provided:al2023@sha256:[0-9a-f]{64}/, base.reference));
  cache = mkdtempSync(join(tmpdir(), 'nxcache-image-'));
  env = { ...cargoEnv, NX_CACHE_DIRECTORY: cache, BUILDONCE_STORE: undefined, BUILDONCE_REGISTRY: `${registry.host}/rust-scorer` };
});

afterAll(async () => {
  await registry?.stop();
  ws?.dispose();
  if (cache) rmSync(cache, { recursive: true, force: true });
});

describe('nx run rust-scorer-image:publish / promote / resolve', () => {
  it('builds the image from the rust-scorer bootstrap, pushes it, records it; re-publish uploads 0 blobs', async () => {
    const first = nx(['run', 'rust-scorer-image:publish']);
    expect(first.status, first.stdout + first.stderr).toBe(0);
    const manifest = JSON.parse(readFileSync(join(ws.root, 'dist/apps/rust-scorer-image/artifact.json'), 'utf8'));
    expect(manifest).toMatchObject({ project: 'rust-scorer-image', kind: 'oci-image', architecture: 'arm64', image: { platform: 'linux/arm64' } });
    expect(manifest.version).toMatch(/^\d+$/);
    expect(first.stdout).toContain(`tagged ${registry.host}/rust-scorer:${manifest.version}`);
    expect(first.stdout).toMatch(/uploaded 2 blob\(s\), \d+ bytes; mounted 1/);
    const client = new RegistryClient({ registry: registry.host, scheme: 'http' });
    expect((await client.headManifest('rust-scorer', manifest.version))?.digest).toBe(manifest.image.digest);
    const stored = JSON.parse(readFileSync(join(ws.root, '.buildonce/store/artifacts/rust-scorer-image', manifest.version, 'manifest.json'), 'utf8'));
    expect(stored.registry.uri).toBe(`${registry.host}/rust-scorer@${manifest.image.digest}`);

    const again = nx(['run', 'rust-scorer-image:publish']);
    expect(again.status, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toContain('uploaded 0 blob(s), 0 bytes; mounted 0; 3 already there');
    expect(again.stdout).toContain(`version ${manifest.version} is already published`);

    const promoted = nx(['run', 'rust-scorer-image:promote', '--env=dev']);
    expect(promoted.status, promoted.stdout + promoted.stderr).toBe(0);
    expect(readdirSync(join(ws.root, '.buildonce/deploy/dev/rust-scorer-image/current'))).toContain('image-manifest.json');
    const resolved = ws.runResult('npx', ['nx', 'run', 'rust-scorer-image:resolve', '--env=dev', '--output-style=stream'], env);
    expect(resolved.status, resolved.stderr).toBe(0);
    expect(resolved.stdout).toContain(`${registry.host}/rust-scorer@${manifest.image.digest}`);
  }, 900_000); // a cold cargo build of rust-scorer in the fresh workspace takes minutes on 2 cores

  it('an image whose platform is not the packed bootstrap machine is refused before anything is built', () => {
    const pj = join(ws.root, 'apps/rust-scorer-image/project.json');
    const orig = readFileSync(pj, 'utf8');
    // rust-scorer builds an arm64 bootstrap (its Cargo.toml): an amd64 image of it could never run
    writeFileSync(pj, orig.replace('"platform": "linux/arm64"', '"platform": "linux/amd64"'));
    try {
      const r = nx(['run', 'rust-scorer-image:build', '--excludeTaskDependencies', '--skip-nx-cache']);
      expect(r.status).not.toBe(0);
      expect(r.stdout + r.stderr).toContain(
        '[rust-scorer-image] image file ${LAMBDA_RUNTIME_DIR}/bootstrap is an ELF executable for aarch64 but the image platform is linux/amd64 (x86_64)',
      );
    } finally {
      writeFileSync(pj, orig);
    }
  });

  it('a base image without a digest is refused by the schema in one line', () => {
    const pj = join(ws.root, 'apps/rust-scorer-image/project.json');
    const orig = readFileSync(pj, 'utf8');
    writeFileSync(pj, orig.replace(/@sha256:[0-9a-f]{64}/, ''));
    try {
      const r = nx(['run', 'rust-scorer-image:build', '--excludeTaskDependencies']);
      expect(r.status).not.toBe(0);
      expect(r.stdout + r.stderr).toMatch(/baseImage/);
    } finally {
      writeFileSync(pj, orig);
    }
  });
});
