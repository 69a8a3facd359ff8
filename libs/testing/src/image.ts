/**
 * Image test helpers: a tiny Lambda-like base image made
 * from files created here, pushed to a test registry as a multi-platform index (amd64 + arm64) with
 * Docker schema 2 media types, like the public Lambda base images.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeDeterministicTarGz } from '@buildonce/artifact';
import {
  MEDIA_DOCKER_CONFIG,
  MEDIA_DOCKER_LAYER_GZIP,
  MEDIA_DOCKER_LIST,
  MEDIA_DOCKER_MANIFEST,
  buildImage,
  canonicalJson,
  digestFile,
  digestOf,
  RegistryClient,
} from '@buildonce/image';
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { createHash } from 'node:crypto';
import { CreateFunctionCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import type { ProjectName, Version } from '@buildonce/values';

export interface TestBaseImage {
  /** `127.0.0.1:<port>/<repo>:<tag>@sha256:<index digest>` */
  reference: string;
  indexDigest: string;
  /** per-platform manifest digests */
  manifests: Record<'amd64' | 'arm64', string>;
}

/**
 * Builds and pushes the test base image `<registry>/<repo>:<tag>`: per platform one layer with
 * `/lambda-entrypoint.sh`, `/etc/os-release` and `/var/task/.keep`, a config with Lambda's Env
 * (`LAMBDA_TASK_ROOT=/var/task`, `LAMBDA_RUNTIME_DIR=/var/runtime`), `Entrypoint ["/lambda-entrypoint.sh"]`
 * and `WorkingDir /var/task`; then a manifest list over both.
 */
export async function pushTestBaseImage(client: RegistryClient, repo = 'lambda/provided', tag = 'al2023'): Promise<TestBaseImage> {
  const dir = await mkdtemp(join(tmpdir(), 'buildonce-base-'));
  try {
    const manifests = {} as Record<'amd64' | 'arm64', string>;
    const entries: { digest: string; size: number; arch: string }[] = [];
    for (const arch of ['amd64', 'arm64'] as const) {
      const tgz = join(dir, `${arch}.tar.gz`);
      await writeDeterministicTarGz(
        [
          { name: 'lambda-entrypoint.sh', bytes: Buffer.from('#!/bin/sh\nexec "${LAMBDA_RUNTIME_DIR}/bootstrap" "$@"\n'), mode: 0o755 },
          { name: 'etc/os-release', bytes: Buffer.from(`NAME="Test Linux"\nARCH=${arch}\n`) },
          { name: 'var/task/.keep', bytes: Buffer.alloc(0) },
        ],
        tgz,
      );
      const layer = await digestFile(tgz);
      const h = createHash('sha256');
      for await (const c of createReadStream(tgz).pipe(createGunzip())) h.update(c as Buffer);
      const config = {
        architecture: arch,
        os: 'linux',
        config: {
          Env: [
            'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
            'LANG=en_US.UTF-8',
            'TZ=:/etc/localtime',
            'LAMBDA_TASK_ROOT=/var/task',
            'LAMBDA_RUNTIME_DIR=/var/runtime',
          ],
          Entrypoint: ['/lambda-entrypoint.sh'],
          WorkingDir: '/var/task',
        },
        created: '2024-01-01T00:00:00Z',
        history: [{ created: '2024-01-01T00:00:00Z', created_by: 'test base layer' }],
        rootfs: { type: 'layers', diff_ids: [`sha256:${h.digest('hex')}`] },
      };
      const configBytes = canonicalJson(config);
      const configPath = join(dir, `${arch}.config.json`);
      await writeFile(configPath, configBytes);
      const configDigest = digestOf(configBytes);
      await client.pushBlob(repo, layer.digest, layer.size, tgz);
      await client.pushBlob(repo, configDigest, configBytes.length, configPath);
      const manifest = canonicalJson({
        schemaVersion: 2,
        mediaType: MEDIA_DOCKER_MANIFEST,
        config: { mediaType: MEDIA_DOCKER_CONFIG, size: configBytes.length, digest: configDigest },
        layers: [{ mediaType: MEDIA_DOCKER_LAYER_GZIP, size: layer.size, digest: layer.digest }],
      });
      const md = digestOf(manifest);
      await client.putManifest(repo, md, manifest, MEDIA_DOCKER_MANIFEST);
      manifests[arch] = md;
      entries.push({ digest: md, size: manifest.length, arch });
    }
    const list = canonicalJson({
      schemaVersion: 2,
      mediaType: MEDIA_DOCKER_LIST,
      manifests: entries.map((e) => ({ mediaType: MEDIA_DOCKER_MANIFEST, size: e.size, digest: e.digest, platform: { architecture: e.arch, os: 'linux' } })),
    });
    const indexDigest = digestOf(list);
    await client.putManifest(repo, tag, list, MEDIA_DOCKER_LIST);
    return { reference: `${client.registry}/${repo}:${tag}@${indexDigest}`, indexDigest, manifests };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Builds a one-layer Lambda image of `project@version` on the test base image (its `bootstrap` prints
 * `body`) into `outDir`, as the oci-image executor would (linux/amd64, `provided.al2023`).
 */
export async function buildTestLambdaImage(o: {
  project: ProjectName;
  version: string;
  body: string;
  base: TestBaseImage;
  /** the registry the base image was pushed to (`host:port`) */
  baseRegistry: string;
  outDir: string;
}): Promise<void> {
  await buildImage({
    project: o.project,
    version: o.version as Version,
    runtime: 'provided.al2023',
    baseImage: o.base.reference,
    platform: 'linux/amd64',
    layers: [{ name: 'bootstrap', files: [{ destination: '${LAMBDA_RUNTIME_DIR}/bootstrap', bytes: Buffer.from(o.body), mode: 0o755 }] }],
    cmd: ['bootstrap'],
    outDir: o.outDir,
    baseClient: new RegistryClient({ registry: o.baseRegistry, scheme: 'http' }),
  });
}

/**
 * Creates container-image Lambda functions (x86_64) named `names`, each running `placeholderImageUri`
 * (IaC's placeholder; promotion replaces it), with the execution role `role` (ARN, e.g. from {@link createLambdaRole}).
 */
export async function createImageFunctions(lambda: LambdaClient, names: readonly string[], placeholderImageUri: string, role: string): Promise<void> {
  for (const FunctionName of names)
    await lambda.send(
      new CreateFunctionCommand({ FunctionName, PackageType: 'Image', Role: role, Architectures: ['x86_64'], Code: { ImageUri: placeholderImageUri } }),
    );
}
