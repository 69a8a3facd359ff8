import { mkdtempSync } from 'node:fs';
import { unusedAwsClients, startImageStack, type ImageStack, FakeTarget } from '@buildonce/testing';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateRepositoryCommand, DescribeImagesCommand, GetLifecyclePolicyCommand, PutImageCommand } from '@aws-sdk/client-ecr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBuildManifest } from '@buildonce/artifact';
import { awsClients } from '@buildonce/aws';
import { openStore, parseStoreUrl, publishArtifact, publishMetadataFromEnv, readStoredManifest, type BlobStore } from '@buildonce/store';
import { buildImage, putEcrLifecyclePolicy, RegistryClient, PROTECTED_TAG_PREFIX, IMAGE_MANIFEST_FILE } from '@buildonce/image';
import { readFile } from 'node:fs/promises';
import { parseConfig, resolveEnvironment } from '@buildonce/config';
import { promoteVersion } from '@buildonce/promotion';
import { runImageRetention } from '@buildonce/retention';
import { runPublishCommand } from './commands';
import type { ProjectName, Version, EnvironmentName } from '@buildonce/values';

let stack: ImageStack;
let ws: string;
const client = () => new RegistryClient({ registry: stack.registry.host, scheme: 'http' });
const meta = { commit: 'c0ffee', runId: '1', actor: 'ci' };

beforeAll(async () => {
  stack = await startImageStack();
  ws = mkdtempSync(join(tmpdir(), 'image-retention-'));
});
afterAll(async () => {
  await stack?.stop();
  if (ws) await rm(ws, { recursive: true, force: true });
});

async function build(project: string, version: string, body: string): Promise<string> {
  const dir = join(ws, project, version);
  await buildImage({
    project: project as ProjectName,
    version: version as Version,
    runtime: 'provided.al2023',
    baseImage: stack.base.reference,
    platform: 'linux/amd64',
    layers: [{ name: 'bootstrap', files: [{ destination: '/var/runtime/bootstrap', bytes: Buffer.from(body), mode: 0o755 }] }],
    outDir: dir,
    baseClient: client(),
  });
  return dir;
}

async function promote(store: BlobStore, project: string, version: string, env: string) {
  const config = parseConfig({ environments: [{ name: 'dev' }, { name: 'staging' }, { name: 'prod' }] }, 'test');
  return promoteVersion({
    store,
    aws: unusedAwsClients(),
    project: project as ProjectName,
    version: version as Version,
    environment: resolveEnvironment(config, env as EnvironmentName),
    target: new FakeTarget(),
    meta,
    lock: config.lock,
    log: () => undefined,
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('image retention', () => {
  it('deletes unprotected images by digest in the registry, never a protected or shared one', async () => {
    const store = openStore(parseStoreUrl(`file://${join(ws, 'store-a')}`));
    const env = { BUILDONCE_REGISTRY: `${stack.registry.host}/svc`, PATH: process.env.PATH };
    const publish = async (version: string, body: string) => {
      const dir = await build('svc', version, body);
      const r = await runPublishCommand({
        project: 'svc' as ProjectName,
        workspaceRoot: ws,
        outputDir: dir,
        store: store.location.url,
        processEnv: env,
        log: () => undefined,
      });
      await sleep(1100);
      return r.push!;
    };
    const a = await publish('101', 'same'); // old, same image as 104
    const b = await publish('102', 'prod'); // current in prod
    const c = await publish('103', 'stale'); // nobody needs it
    const d = await publish('104', 'same'); // newest (kept by keep=1), same digest as 101
    expect(a.digest).toBe(d.digest);
    await promote(store, 'svc', '102', 'dev');
    const r = await runImageRetention({ store, keep: 1, olderThanDays: 0, inFlightMs: 0, env, aws: awsClients({ env }), log: () => undefined });
    expect(r.deleted.map((v) => v.version).sort()).toEqual(['101', '103']);
    expect(r.images.deleted).toEqual([`${stack.registry.host}/svc@${c.digest}`]);
    expect(r.images.shared).toEqual([`${stack.registry.host}/svc@${a.digest}`]);
    expect(await client().headManifest('svc', c.digest)).toBeUndefined();
    expect((await client().headManifest('svc', b.digest))?.digest).toBe(b.digest);
    expect((await client().headManifest('svc', d.digest))?.digest).toBe(d.digest);
    expect(await readStoredManifest(store, 'svc' as ProjectName, '102' as Version)).toBeDefined();
  });

  it('ECR (moto): protected versions get keep-<version> tags, unprotected lose them, deleted ones go by digest; the lifecycle policy is written', async () => {
    const aws = awsClients({ env: stack.moto.env });
    const ecr = aws.ecr();
    const repo = await ecr.send(new CreateRepositoryCommand({ repositoryName: 'scorer', imageTagMutability: 'IMMUTABLE' }));
    const repository = repo.repository!.repositoryUri!;
    const store = openStore(parseStoreUrl(`file://${join(ws, 'store-b')}`));
    const versions: Record<string, string> = {};
    for (const [version, body] of [
      ['201', 'one'],
      ['202', 'two'],
      ['203', 'three'],
    ] as const) {
      const dir = await build('scorer', version, body);
      const manifest = await readBuildManifest(dir, 'scorer' as ProjectName);
      const bytes = await readFile(join(dir, IMAGE_MANIFEST_FILE), 'utf8');
      // moto's ECR takes manifests through the ECR API (no blob upload API): this is what a push leaves
      const put = await ecr.send(
        new PutImageCommand({
          repositoryName: 'scorer',
          imageManifest: bytes,
          imageManifestMediaType: 'application/vnd.oci.image.manifest.v1+json',
          imageTag: version,
          imageDigest: manifest.image!.digest,
        }),
      );
      expect(put.image?.imageId?.imageDigest).toBe(manifest.image!.digest);
      versions[version] = manifest.image!.digest;
      await publishArtifact({
        store,
        manifest,
        dir,
        metadata: publishMetadataFromEnv({}),
        registry: { repository, uri: `${repository}@${manifest.image!.digest}`, tags: [version] },
      });
      await sleep(1100);
    }
    await promote(store, 'scorer', '201', 'dev');
    await promote(store, 'scorer', '202', 'dev'); // 201 stays in dev's rollback window
    // an earlier run had protected 203; it is no longer protected and must lose the tag
    await ecr.send(
      new PutImageCommand({
        repositoryName: 'scorer',
        imageManifest: await readFile(join(ws, 'scorer', '203', IMAGE_MANIFEST_FILE), 'utf8'),
        imageManifestMediaType: 'application/vnd.oci.image.manifest.v1+json',
        imageTag: `${PROTECTED_TAG_PREFIX}203`,
        imageDigest: versions['203'],
      }),
    );
    const r = await runImageRetention({ store, keep: 1, olderThanDays: 0, inFlightMs: 0, aws, env: stack.moto.env, log: () => undefined });
    expect(r.deleted).toEqual([]); // 201 rollback window, 202 current, 203 newest
    expect(r.images.tagged.sort()).toEqual([`${repository}:keep-201`, `${repository}:keep-202`]);
    expect(r.images.untagged).toEqual([`${repository}:keep-203`]);
    const tagsOf = async () => {
      const d = await ecr.send(new DescribeImagesCommand({ repositoryName: 'scorer' }));
      return Object.fromEntries((d.imageDetails ?? []).map((i) => [i.imageDigest!, (i.imageTags ?? []).sort()]));
    };
    expect(await tagsOf()).toEqual({ [versions['201']!]: ['201', 'keep-201'], [versions['202']!]: ['202', 'keep-202'], [versions['203']!]: ['203'] });

    // 203 is no longer newest once 204 exists; nothing protects it → its image goes by digest
    const dir = await build('scorer', '204', 'four');
    const m4 = await readBuildManifest(dir, 'scorer' as ProjectName);
    await ecr.send(
      new PutImageCommand({
        repositoryName: 'scorer',
        imageManifest: await readFile(join(dir, IMAGE_MANIFEST_FILE), 'utf8'),
        imageManifestMediaType: 'application/vnd.oci.image.manifest.v1+json',
        imageTag: '204',
        imageDigest: m4.image!.digest,
      }),
    );
    await publishArtifact({
      store,
      manifest: m4,
      dir,
      metadata: publishMetadataFromEnv({}),
      registry: { repository, uri: `${repository}@${m4.image!.digest}`, tags: ['204'] },
    });
    const r2 = await runImageRetention({ store, keep: 1, olderThanDays: 0, inFlightMs: 0, aws, env: stack.moto.env, log: () => undefined });
    expect(r2.deleted.map((v) => v.version)).toEqual(['203']);
    expect(r2.images.deleted).toEqual([`${repository}@${versions['203']}`]);
    const after = await tagsOf();
    expect(Object.keys(after).sort()).toEqual([versions['201']!, versions['202']!, m4.image!.digest].sort());

    const text = await putEcrLifecyclePolicy(aws, repository, { keepLast: 30, untaggedDays: 1 });
    const got = await ecr.send(new GetLifecyclePolicyCommand({ repositoryName: 'scorer' }));
    expect(JSON.parse(got.lifecyclePolicyText!)).toEqual(JSON.parse(text));
    expect(JSON.parse(text).rules[0]).toMatchObject({ rulePriority: 1, selection: { tagStatus: 'tagged', tagPrefixList: ['keep-'] } });
  });
});
