import { chmod, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '@buildonce/process';
import { startRegistry, unusedAwsClients, type RegistryServer, pushTestBaseImage, type TestBaseImage } from '@buildonce/testing';
import { ArtifactConflictError, publishMetadataFromEnv } from '@buildonce/store';
import { buildImage, IMAGE_MANIFEST_FILE } from './assemble';
import { RegistryClient } from './registry';
import { pushImage, layoutDirOf } from './push';
import { parseImageReference } from './reference';
import { pushImageBuild } from './publish';
import { listTarGz } from '@buildonce/artifact';
import { blobPath } from './layout';
import type { ProjectName, Version } from '@buildonce/values';

let registry: RegistryServer;
let base: TestBaseImage;
let tmp: string;
const requests: string[] = [];

const client = () => new RegistryClient({ registry: registry.host, scheme: 'http', onRequest: (m, p, s) => requests.push(`${m} ${p} ${s}`) });

async function bootstrapIn(dir: string, body: string): Promise<string> {
  const p = join(dir, 'bootstrap');
  await writeFile(p, body);
  await chmod(p, 0o700); // normalized to 0755 in the layer
  await utimes(p, new Date(), new Date(Date.now() - Math.random() * 1e9));
  return p;
}

async function build(outDir: string, bootstrap: string, version = '1234567890') {
  return buildImage({
    project: 'rust-scorer-image' as ProjectName,
    version: version as Version,
    runtime: 'provided.al2023',
    handler: 'bootstrap',
    baseImage: base.reference,
    platform: 'linux/amd64',
    layers: [{ name: 'bootstrap', files: [{ destination: '${LAMBDA_RUNTIME_DIR}/bootstrap', path: bootstrap, mode: 0o755 }] }],
    cmd: ['bootstrap'],
    outDir,
    cacheDir: join(outDir, '..', 'cache-' + Math.random().toString(36).slice(2)),
    baseClient: client(),
  });
}

const skopeo = (args: string[]) => run('skopeo', args);

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'buildonce-image-int-'));
  registry = await startRegistry();
  base = await pushTestBaseImage(client());
});

afterAll(async () => {
  await registry?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('oci-image assembly (real registry, skopeo)', () => {
  it('builds the same manifest digest from two clones and skopeo reads the layout', async () => {
    const a = await mkdtemp(join(tmp, 'clone-a-'));
    const b = await mkdtemp(join(tmp, 'clone-b-'));
    const ra = await build(join(a, 'dist'), await bootstrapIn(a, '#!/bin/sh\necho scorer\n'));
    const rb = await build(join(b, 'dist'), await bootstrapIn(b, '#!/bin/sh\necho scorer\n'));
    expect(ra.image.digest).toBe(rb.image.digest);
    expect(await readFile(join(a, 'dist', IMAGE_MANIFEST_FILE))).toEqual(await readFile(join(b, 'dist', IMAGE_MANIFEST_FILE)));
    expect(ra.manifest).toMatchObject({
      kind: 'oci-image',
      version: '1234567890',
      architecture: 'x86_64',
      image: { digest: ra.image.digest, platform: 'linux/amd64' },
    });
    expect(ra.manifest.files[0]!.sha256).toBe(ra.image.digest.slice(7));
    // the base layer is the amd64 one; our layer has /var/runtime/bootstrap 0755, root-owned, fixed mtime
    expect(ra.image.layers).toHaveLength(2);
    const entries = await listTarGz(blobPath(layoutDirOf(join(a, 'dist')), ra.image.addedLayers[0]!.digest));
    expect(entries.map((e) => [e.path, e.mode, e.uid, e.mtime])).toEqual([
      ['var/', 0o755, 0, undefined],
      ['var/runtime/', 0o755, 0, undefined],
      ['var/runtime/bootstrap', 0o755, 0, 315532800],
    ]);
    const inspect = JSON.parse((await skopeo(['inspect', `oci:${layoutDirOf(join(a, 'dist'))}`])).stdout) as {
      Digest: string;
      Architecture: string;
      Os: string;
      Created: string;
      Env: string[];
    };
    expect(inspect).toMatchObject({ Digest: ra.image.digest, Architecture: 'amd64', Os: 'linux' });
    expect(inspect.Created).toBe('1980-01-01T00:00:00Z');
    const config = JSON.parse((await skopeo(['inspect', '--config', `oci:${layoutDirOf(join(a, 'dist'))}`])).stdout) as {
      config: { Entrypoint: string[]; Cmd: string[] };
    };
    expect(config.config).toMatchObject({ Entrypoint: ['/lambda-entrypoint.sh'], Cmd: ['bootstrap'] });
  });

  it('an arm64 build picks the arm64 base from the index and gets another digest', async () => {
    const a = await mkdtemp(join(tmp, 'arm-'));
    const r = await buildImage({
      project: 'rust-scorer-image' as ProjectName,
      version: '1' as Version,
      runtime: 'provided.al2023',
      baseImage: base.reference,
      platform: 'linux/arm64',
      layers: [{ name: 'bootstrap', files: [{ destination: '/var/runtime/bootstrap', bytes: Buffer.from('x'), mode: 0o755 }] }],
      outDir: join(a, 'dist'),
      baseClient: client(),
    });
    expect(r.manifest.architecture).toBe('arm64');
    expect(r.image.base.digest).toBe(base.manifests.arm64);
  });

  it('refuses a base image without a digest (not reproducible)', async () => {
    await expect(
      buildImage({
        project: 'p' as ProjectName,
        version: '1' as Version,
        runtime: 'provided.al2023',
        baseImage: `${registry.host}/lambda/provided:al2023`,
        platform: 'linux/amd64',
        layers: [],
        outDir: join(tmp, 'nodigest'),
        baseClient: client(),
      }),
    ).rejects.toThrow(/has no digest: pin it as <image>@sha256/);
  });

  it('pushes once (mounting the base layer), re-push uploads nothing, skopeo sees the same digest; a tag conflict changes nothing', async () => {
    const a = await mkdtemp(join(tmp, 'push-'));
    const out = join(a, 'dist');
    const r = await build(out, await bootstrapIn(a, '#!/bin/sh\necho push\n'), '42');
    const target = parseImageReference(`${registry.host}/rust-scorer`);
    const first = await pushImage({ layoutDir: layoutDirOf(out), target, client: client(), tags: ['42'] });
    expect(first).toMatchObject({ status: 'pushed', digest: r.image.digest, blobsUploaded: 2, blobsMounted: 1, blobsExisting: 0, manifestsPut: 2 });
    expect(first.uri).toBe(`${registry.host}/rust-scorer@${r.image.digest}`);

    requests.length = 0;
    const again = await pushImage({ layoutDir: layoutDirOf(out), target, client: client(), tags: ['42'] });
    expect(again).toMatchObject({ status: 'already-pushed', blobsUploaded: 0, blobsMounted: 0, blobsExisting: 3, manifestsPut: 0 });
    expect(requests.filter((l) => /^(POST|PUT|PATCH) /.test(l))).toEqual([]);

    const ins = JSON.parse((await skopeo(['inspect', '--tls-verify=false', `docker://${registry.host}/rust-scorer:42`])).stdout) as {
      Digest: string;
      Architecture: string;
      Os: string;
    };
    expect(ins).toMatchObject({ Digest: r.image.digest, Architecture: 'amd64', Os: 'linux' });
    const copyDir = join(a, 'copy');
    await skopeo(['copy', '--src-tls-verify=false', `docker://${registry.host}/rust-scorer@${r.image.digest}`, `oci:${copyDir}:x`]);
    const copied = JSON.parse((await skopeo(['inspect', `oci:${copyDir}:x`])).stdout) as { Digest: string };
    expect(copied.Digest).toBe(r.image.digest);

    const b = await mkdtemp(join(tmp, 'push-other-'));
    const other = await build(join(b, 'dist'), await bootstrapIn(b, '#!/bin/sh\necho different\n'), '42');
    requests.length = 0;
    const err = await pushImage({ layoutDir: layoutDirOf(join(b, 'dist')), target, client: client(), tags: ['42'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArtifactConflictError);
    expect(String((err as Error).message)).toContain(`${registry.host}/rust-scorer:42`);
    expect(requests.filter((l) => /^(POST|PUT|PATCH|DELETE) /.test(l))).toEqual([]);
    expect((await client().headManifest('rust-scorer', '42'))!.digest).toBe(r.image.digest);
    expect(await client().headBlob('rust-scorer', other.image.addedLayers[0]!.digest)).toBeUndefined();
  });

  it('pushImageBuild pushes the version and sha tags; a re-push uploads 0 blobs; preview builds never take the version tag', async () => {
    const ws = await mkdtemp(join(tmp, 'ws-'));
    const out = join(ws, 'dist', 'apps', 'rust-scorer-image');
    const r = await build(out, await bootstrapIn(ws, '#!/bin/sh\necho publish\n'), '777');
    const env = { BUILDONCE_REGISTRY: `${registry.host}/scorer-image`, PATH: process.env.PATH };
    const metadata = publishMetadataFromEnv({ GITHUB_SHA: 'abcdef1234567890abcdef1234567890abcdef12' });
    const opts = {
      project: 'rust-scorer-image' as ProjectName,
      outputDir: out,
      manifest: r.manifest,
      namespace: 'trusted' as const,
      metadata,
      env,
      aws: unusedAwsClients(),
      log: () => undefined,
    };
    const first = await pushImageBuild(opts);
    expect(first.push.blobsUploaded + first.push.blobsMounted).toBe(3);
    const date = metadata.publishedAt.slice(0, 10).replace(/-/g, '');
    expect(first.registry).toEqual({
      repository: `${registry.host}/scorer-image`,
      uri: `${registry.host}/scorer-image@${r.image.digest}`,
      tags: ['777', `sha-abcdef1234567890abcdef1234567890abcdef12-${date}`],
    });
    expect((await client().listTags('scorer-image')).sort()).toEqual([...first.registry.tags].sort());
    const again = await pushImageBuild(opts);
    expect(again.push).toMatchObject({ status: 'already-pushed', blobsUploaded: 0, bytesUploaded: 0, manifestsPut: 0 });
    const preview = await pushImageBuild({ ...opts, namespace: 'preview' });
    expect(preview.registry.tags).toEqual(['preview-777']);
  });

  it('fails with one line when no registry is configured', async () => {
    const ws = await mkdtemp(join(tmp, 'noreg-'));
    const out = join(ws, 'dist');
    const r = await build(out, await bootstrapIn(ws, 'x'), '5');
    await expect(
      pushImageBuild({
        project: 'rust-scorer-image' as ProjectName,
        outputDir: out,
        manifest: r.manifest,
        namespace: 'trusted',
        metadata: publishMetadataFromEnv({}),
        env: {},
        aws: unusedAwsClients(),
        log: () => undefined,
      }),
    ).rejects.toThrow(/set the publish target's "registry" option or BUILDONCE_REGISTRY/);
  });
});
