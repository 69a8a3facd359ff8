import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateRepositoryCommand, DescribeImagesCommand, PutImageCommand, type ECRClient } from '@aws-sdk/client-ecr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsClients } from '@buildonce/aws';
import { parseConfig, resolveEnvironment } from '@buildonce/config';
import { IMAGE_MANIFEST_FILE, RegistryClient } from '@buildonce/image';
import {
  buildTestLambdaImage,
  createLambdaRole,
  createImageFunctions,
  FakeTarget,
  lambdaCommands,
  removeTempDirs,
  startImageStack,
  tempDir,
  unusedAwsClients,
  type ImageStack,
} from '@buildonce/testing';
import { promoteVersion } from '@buildonce/promotion';
import { openStore, parseStoreUrl } from '@buildonce/store';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';
import { runPromoteCommand, runPublishCommand, runRetentionCommand, runRollbackCommand } from './commands';

/*
 * Image retention in region registries, on real parts: moto_server (S3 stores in us-east-1 and eu-west-1,
 * an image Lambda per region, ECR in eu-west-1) and two CNCF distribution registries. Images are published
 * to the home registry's `rust-scorer`; promotion copies them to us-east-1's `scorer-use1` (same registry)
 * and eu-west-1's `scorer` (the second registry).
 */
let stack: ImageStack;
let ws: string;
let penv: NodeJS.ProcessEnv;
const project = 'rust-scorer-image' as ProjectName;
const meta = { commit: '3333333333333333333333333333333333333333', runId: '8', actor: 'ci-bot' };
const lines: string[] = [];
const later = () => new Date(Date.now() + 3 * 86_400_000);
const repos = () => ({
  home: { client: new RegistryClient({ registry: stack.registry.host, scheme: 'http' }), repo: 'rust-scorer' },
  'us-east-1': { client: new RegistryClient({ registry: stack.registry.host, scheme: 'http' }), repo: 'scorer-use1' },
  'eu-west-1': { client: new RegistryClient({ registry: stack.registries[1]!.host, scheme: 'http' }), repo: 'scorer' },
});
/** whether each repository (home, us-east-1, eu-west-1) serves the digest (HEAD) */
const served = async (digest: string) =>
  Object.fromEntries(await Promise.all(Object.entries(repos()).map(async ([k, r]) => [k, (await r.client.headManifest(r.repo, digest))?.digest === digest])));

beforeAll(async () => {
  stack = await startImageStack(2);
  const { moto } = stack;
  penv = { ...process.env, ...moto.env, BUILDONCE_STORE: '', BUILDONCE_REGISTRY: `${stack.registry.host}/rust-scorer` };
  await moto.createBucket('ret-home');
  await moto.createBucket('ret-euw1', 'eu-west-1');
  await moto.createBucket('ret-ecr');
  ws = tempDir('regions-image-retention-ws-');
  await writeFile(
    join(ws, 'buildonce.json'),
    JSON.stringify({
      store: 's3://ret-home/team',
      environments: [
        {
          name: 'prod',
          regions: {
            'us-east-1': { registry: `${stack.registry.host}/scorer-use1` },
            'eu-west-1': { store: 's3://ret-euw1/team', registry: `${stack.registries[1]!.host}/scorer` },
          },
        },
      ],
    }),
  );
  const role = await createLambdaRole(moto.endpoint, 'image-retention-role');
  for (const region of ['us-east-1', 'eu-west-1'])
    await createImageFunctions(
      awsClients({ env: { ...moto.env, AWS_REGION: region } }).lambda(),
      [`${project}-prod`],
      `${stack.registry.host}/placeholder:latest`,
      role,
    );
});
afterAll(async () => {
  await stack?.stop();
  removeTempDirs();
});

/** Builds image version `version` (bootstrap says `body`) into `<root>/dist/<version>` and publishes it. @returns its dir and digest */
async function publishVersion(root: string, version: string, body: string, store?: string): Promise<{ dir: string; digest: string }> {
  const dir = join(root, 'dist', version);
  await buildTestLambdaImage({ project: project, version, body, base: stack.base, baseRegistry: stack.registry.host, outDir: dir });
  const r = await runPublishCommand({ project, workspaceRoot: root, outputDir: dir, processEnv: penv, log: () => undefined, ...(store ? { store } : {}) });
  return { dir, digest: r.push!.digest };
}

const commands = lambdaCommands(() => ({ project, workspaceRoot: ws, processEnv: penv, meta, log: () => undefined }));
const promote = (dir: string) => runPromoteCommand(commands.promote('prod', dir));

const retention = (dryRun: boolean, root = ws) =>
  runRetentionCommand({ workspaceRoot: root, olderThanDays: 1, keep: 1, dryRun, now: later(), processEnv: penv, log: (l) => lines.push(l) });

describe('image retention in region registries', () => {
  it('a version promoted to two regions and no longer protected goes from the home and both region registries; the current one stays in all; dry run deletes nothing', async () => {
    const v1 = await publishVersion(ws, '6001', 'one');
    const v2 = await publishVersion(ws, '6002', 'two');
    const v3 = await publishVersion(ws, '6003', 'three'); // newest, never promoted: kept by keep=1
    expect((await promote(v1.dir)).status).toBe('promoted');
    expect((await promote(v2.dir)).status).toBe('promoted');
    // rollback --to 6001 pops 6002 off the rollback stack: nothing protects it any more
    const rb = await runRollbackCommand(commands.rollback('prod', { to: '6001' as Version }));
    expect(rb.status).toBe('promoted');
    expect(await served(v2.digest)).toEqual({ home: true, 'us-east-1': true, 'eu-west-1': true });

    lines.length = 0;
    const dry = await retention(true);
    expect(dry.deleted.map((v) => v.version)).toEqual(['6002']);
    expect(dry.images.deleted).toEqual([`${stack.registry.host}/rust-scorer@${v2.digest}`]);
    expect(dry.images.regions).toEqual([
      {
        region: 'us-east-1',
        repository: `${stack.registry.host}/scorer-use1`,
        deleted: [`${stack.registry.host}/scorer-use1@${v2.digest}`],
        tagged: [],
        untagged: [],
      },
      {
        region: 'eu-west-1',
        repository: `${stack.registries[1]!.host}/scorer`,
        deleted: [`${stack.registries[1]!.host}/scorer@${v2.digest}`],
        tagged: [],
        untagged: [],
      },
    ]);
    expect(lines).toContainEqual(`[eu-west-1] [${project}] dry run: would delete image ${stack.registries[1]!.host}/scorer@${v2.digest}`);
    expect(lines).toContainEqual(`[us-east-1] [${project}] dry run: would delete image ${stack.registry.host}/scorer-use1@${v2.digest}`);
    expect(await served(v2.digest)).toEqual({ home: true, 'us-east-1': true, 'eu-west-1': true });

    lines.length = 0;
    const r = await retention(false);
    expect(r.deleted.map((v) => v.version)).toEqual(['6002']);
    expect(r.images.regions.map((g) => g.deleted)).toEqual([
      [`${stack.registry.host}/scorer-use1@${v2.digest}`],
      [`${stack.registries[1]!.host}/scorer@${v2.digest}`],
    ]);
    expect(lines).toContainEqual(`[eu-west-1] [${project}] deleted image ${stack.registries[1]!.host}/scorer@${v2.digest}`);
    expect(await served(v2.digest)).toEqual({ home: false, 'us-east-1': false, 'eu-west-1': false });
    expect(await served(v1.digest)).toEqual({ home: true, 'us-east-1': true, 'eu-west-1': true });
    expect(await served(v3.digest)).toEqual({ home: true, 'us-east-1': false, 'eu-west-1': false });

    // a second run finds nothing to do: a digest absent from a region repository is no error
    const again = await retention(false);
    expect(again.images.regions.flatMap((g) => g.deleted)).toEqual([]);
  });

  it('ECR region repository (moto): a protected version present there is tagged keep-<version>, an unprotected one loses its tag, a deleted one goes by digest', async () => {
    const root = tempDir('regions-image-retention-ecr-');
    const ecrRepo = '123456789012.dkr.ecr.eu-west-1.amazonaws.com/scorer';
    await writeFile(
      join(root, 'buildonce.json'),
      JSON.stringify({
        store: 's3://ret-ecr/team',
        environments: [{ name: 'dev' }, { name: 'prod', requires: [], regions: { 'eu-west-1': { registry: ecrRepo } } }],
      }),
    );
    const ecr: ECRClient = awsClients({ env: { ...stack.moto.env, AWS_REGION: 'eu-west-1' } }).ecr();
    await ecr.send(new CreateRepositoryCommand({ repositoryName: 'scorer' }));
    const v: Record<string, { dir: string; digest: string }> = {};
    for (const [version, body] of [
      ['7001', 'seven-one'],
      ['7002', 'seven-two'],
      ['7003', 'seven-three'],
    ] as const) {
      v[version] = await publishVersion(root, version, body, 's3://ret-ecr/team');
      // what a promotion to eu-west-1 leaves there (moto's ECR takes manifests through the ECR API only)
      await ecr.send(
        new PutImageCommand({
          repositoryName: 'scorer',
          imageManifest: await readFile(join(v[version]!.dir, IMAGE_MANIFEST_FILE), 'utf8'),
          imageManifestMediaType: 'application/vnd.oci.image.manifest.v1+json',
          imageTag: version === '7001' ? 'seed' : `keep-${version}`,
          imageDigest: v[version]!.digest,
        }),
      );
    }
    // 7001: current in dev (protected, not yet tagged here); 7002: goes (an earlier run had tagged it); 7003: newest,
    // kept but no longer protected, still tagged
    const store = openStore(parseStoreUrl('s3://ret-ecr/team'), { env: stack.moto.env });
    const config = parseConfig({ environments: [{ name: 'dev' }] }, 'test');
    for (const version of ['7001'])
      await promoteVersion({
        store,
        aws: unusedAwsClients(),
        project,
        version: version as Version,
        environment: resolveEnvironment(config, 'dev' as EnvironmentName),
        target: new FakeTarget(),
        meta,
        lock: config.lock,
        log: () => undefined,
      });
    const retained = (dryRun: boolean) =>
      runRetentionCommand({ workspaceRoot: root, olderThanDays: 1, keep: 1, dryRun, now: later(), processEnv: penv, log: (l) => lines.push(l) });
    const tagsOf = async () => {
      const d = await ecr.send(new DescribeImagesCommand({ repositoryName: 'scorer' }));
      return Object.fromEntries((d.imageDetails ?? []).map((i) => [i.imageDigest!, (i.imageTags ?? []).sort()]));
    };
    const before = await tagsOf();
    // what the dry run reports it would do and the real run reports it did
    const ecrResults = [
      {
        region: 'eu-west-1',
        repository: ecrRepo,
        deleted: [`${ecrRepo}@${v['7002']!.digest}`],
        tagged: [`${ecrRepo}:keep-7001`],
        untagged: [`${ecrRepo}:keep-7003`],
      },
    ];

    lines.length = 0;
    const dry = await retained(true);
    expect(dry.deleted.map((x) => x.version)).toEqual(['7002']);
    expect(dry.images.regions).toEqual(ecrResults);
    expect(lines).toContainEqual(`[eu-west-1] [${project}] dry run: would tag ${ecrRepo}@${v['7001']!.digest} keep-7001 (version 7001 is protected)`);
    expect(lines).toContainEqual(`[eu-west-1] [${project}] dry run: would remove ${ecrRepo}:keep-7003 (version 7003 is no longer protected)`);
    expect(await tagsOf()).toEqual(before);

    lines.length = 0;
    const r = await retained(false);
    expect(r.images.regions).toEqual(ecrResults);
    expect(lines).toContainEqual(`[eu-west-1] [${project}] ${ecrRepo}@${v['7001']!.digest} carries keep-7001 (version 7001 is protected)`);
    expect(lines).toContainEqual(`[eu-west-1] [${project}] removed ${ecrRepo}:keep-7003 (version 7003 is no longer protected)`);
    expect(lines).toContainEqual(`[eu-west-1] [${project}] deleted image ${ecrRepo}@${v['7002']!.digest}`);
    const after = await tagsOf();
    expect(after[v['7001']!.digest]).toEqual(['keep-7001', 'seed']);
    expect(after[v['7002']!.digest]).toBeUndefined();
    // ECR (and moto) delete an image whose last tag is removed: a region copy has no other tag, so it goes now
    // and the next promotion of 7003 copies it again
    expect(after[v['7003']!.digest]).toBeUndefined();
  });
});
