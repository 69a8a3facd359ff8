import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GetAliasCommand, GetFunctionCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsClients } from '@buildonce/aws';
import { ImageIntegrityError, RegistryClient } from '@buildonce/image';
import {
  buildTestLambdaImage,
  createLambdaRole,
  createImageFunctions,
  lambdaCommands,
  oneLineRejection,
  removeTempDirs,
  startFaultProxy,
  startImageStack,
  tempDir,
  type FaultProxy,
  type ImageStack,
  type ProxiedRequest,
} from '@buildonce/testing';
import { readCurrent, readHistory } from '@buildonce/ledger';
import { artifactKey, openStore, parseStoreUrl, type BlobStore } from '@buildonce/store';
import { RegionFailureError } from '@buildonce/errors';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';
import { runPromoteCommand, runPublishCommand, runResolveCommand, runRollbackCommand } from './commands';

/*
 * oci-image promotion to an environment with regions, on real parts: moto_server (S3 stores in us-east-1 and
 * eu-west-1, an image Lambda per region) and two CNCF distribution registries. The image is published to
 * the home registry's `rust-scorer`; us-east-1's registry is another repository of that registry (blobs
 * mounted), eu-west-1's is the second registry (blobs streamed from the home registry). AWS requests go
 * through a fault proxy, which fails chosen ones.
 */
let stack: ImageStack;
let proxy: FaultProxy;
let home: BlobStore;
let euw1: BlobStore;
let ws: string;
let penv: NodeJS.ProcessEnv;
const project = 'rust-scorer-image' as ProjectName;
const lambdas: Record<string, LambdaClient> = {};
const lines: string[] = [];
const regionRepo = () => ({ 'us-east-1': `${stack.registry.host}/scorer-use1`, 'eu-west-1': `${stack.registries[1]!.host}/scorer` });

beforeAll(async () => {
  stack = await startImageStack(2);
  const { moto } = stack;
  proxy = await startFaultProxy({ target: moto.endpoint });
  penv = { ...process.env, ...moto.env, AWS_ENDPOINT_URL: proxy.endpoint, BUILDONCE_STORE: '', BUILDONCE_REGISTRY: `${stack.registry.host}/rust-scorer` };
  await moto.createBucket('img-home');
  await moto.createBucket('img-euw1', 'eu-west-1');
  home = openStore(parseStoreUrl('s3://img-home/team'), { env: moto.env });
  euw1 = openStore(parseStoreUrl('s3://img-euw1/team'), { env: moto.env });
  ws = tempDir('regions-image-ws-');
  const regions = {
    'us-east-1': { registry: regionRepo()['us-east-1'] },
    'eu-west-1': { store: 's3://img-euw1/team', registry: regionRepo()['eu-west-1'] },
  };
  await writeFile(
    join(ws, 'buildonce.json'),
    JSON.stringify({
      store: 's3://img-home/team',
      environments: [
        { name: 'prod', regions },
        { name: 'live', requires: [], regions },
        { name: 'noreg', requires: [], regions: { 'us-east-1': {}, 'eu-west-1': { store: 's3://img-euw1/noreg' } } },
      ],
    }),
  );
  const role = await createLambdaRole(moto.endpoint, 'image-regions-role');
  for (const region of ['us-east-1', 'eu-west-1']) {
    lambdas[region] = awsClients({ env: { ...moto.env, AWS_REGION: region } }).lambda();
    await createImageFunctions(lambdas[region]!, [`${project}-prod`, `${project}-live`], `${stack.registry.host}/placeholder:latest`, role);
  }
});
afterAll(async () => {
  await proxy?.stop();
  await stack?.stop();
  removeTempDirs();
});

/** Builds and publishes image version `version` whose bootstrap says `body`. @returns its output dir and digest */
async function publishVersion(version: string, body: string): Promise<{ dir: string; digest: string }> {
  const dir = join(ws, 'dist', version);
  await buildTestLambdaImage({ project: project, version, body, base: stack.base, baseRegistry: stack.registry.host, outDir: dir });
  const r = await runPublishCommand({ project, workspaceRoot: ws, outputDir: dir, processEnv: penv, log: () => undefined });
  return { dir, digest: r.push!.digest };
}

const commands = lambdaCommands(() => ({ project, workspaceRoot: ws, processEnv: penv, log: (l) => lines.push(l) }));
const cmd = commands.promote;

/** The image URI the alias `<env>` runs in a region. */
async function aliasImage(region: string, env: string): Promise<string | undefined> {
  const c = lambdas[region]!;
  try {
    const alias = await c.send(new GetAliasCommand({ FunctionName: `${project}-${env}`, Name: env }));
    return (await c.send(new GetFunctionCommand({ FunctionName: `${project}-${env}`, Qualifier: alias.FunctionVersion }))).Code?.ImageUri;
  } catch {
    return undefined;
  }
}

/** The UpdateFunctionCode request of `<project>-<env>` in `region` (the region is in the SigV4 scope). */
const updateCodeIn = (region: string, env: string) => (r: ProxiedRequest) =>
  r.method === 'PUT' && r.url.includes(`/functions/${project}-${env}/code`) && String(r.headers.authorization).includes(`/${region}/lambda/`);

const resolve = async (env: string, region: string) => {
  const printed: string[] = [];
  await runResolveCommand({
    project,
    workspaceRoot: ws,
    env: env as EnvironmentName,
    region,
    processEnv: penv,
    print: (t) => printed.push(t),
    log: () => undefined,
  });
  return printed;
};

describe('oci-image promotion to regions (moto Lambda per region, two real registries)', () => {
  let v1: { dir: string; digest: string };

  it('--dry-run lists the image copies per region and copies, deploys and records nothing', async () => {
    v1 = await publishVersion('5001', 'v1');
    lines.length = 0;
    const r = await runPromoteCommand(cmd('prod', v1.dir, { dryRun: true }));
    expect(r.status).toBe('dry-run');
    expect(lines).toContainEqual(
      expect.stringContaining(
        `[eu-west-1] dry run: would copy image ${stack.registry.host}/rust-scorer@${v1.digest} to ${regionRepo()['eu-west-1']}@${v1.digest}`,
      ),
    );
    expect(lines).toContainEqual(
      expect.stringContaining(`[us-east-1] dry run: would copy image ${stack.registry.host}/rust-scorer@${v1.digest} to ${regionRepo()['us-east-1']}@`),
    );
    expect(lines.some((l) => l.includes('[us-east-1] dry run: would mount blob'))).toBe(true);
    expect(lines.some((l) => l.includes('[eu-west-1] dry run: would copy blob'))).toBe(true);
    expect(await new RegistryClient({ registry: stack.registries[1]!.host, scheme: 'http' }).headManifest('scorer', v1.digest)).toBeUndefined();
    expect(await readHistory(home, project, 'prod' as EnvironmentName, {})).toEqual([]);
    expect(await aliasImage('eu-west-1', 'prod')).toBeUndefined();
  });

  it("copies the image into each region's registry; each region's Lambda runs its own registry's URI by digest; resolve --region prints it", async () => {
    lines.length = 0;
    expect((await runPromoteCommand(cmd('prod', v1.dir))).status).toBe('promoted');
    for (const [region, repo] of Object.entries(regionRepo())) expect(await aliasImage(region, 'prod')).toBe(`${repo}@${v1.digest}`);
    const cur = (await readCurrent(home, project, 'prod' as EnvironmentName))!.entry;
    expect(cur.regions).toMatchObject({
      'us-east-1': { status: 'succeeded', copy: 'home', image: { uri: `${regionRepo()['us-east-1']}@${v1.digest}`, copy: 'copied' } },
      'eu-west-1': { status: 'succeeded', copy: 'copied', image: { uri: `${regionRepo()['eu-west-1']}@${v1.digest}`, copy: 'copied' } },
    });
    expect(lines.some((l) => /\[us-east-1\] copied .* \(0 blob\(s\) streamed, 0 bytes; 3 mounted/.test(l))).toBe(true);
    expect(lines.some((l) => /\[eu-west-1\] copied .* \(3 blob\(s\) streamed/.test(l))).toBe(true);
    // the region store holds the version's metadata (image-manifest.json, manifest.json) like any region copy
    expect(await euw1.head(artifactKey(project, '5001' as Version, 'image-manifest.json'))).toBeDefined();
    for (const region of ['us-east-1', 'eu-west-1']) expect(await resolve('prod', region)).toEqual([`${regionRepo()[region as 'eu-west-1']}@${v1.digest}`]);
    expect(await resolve('prod', 'us-east-1')).not.toEqual([`${stack.registry.host}/rust-scorer@${v1.digest}`]);
  });

  it('an image the region registries already serve is present: nothing copied', async () => {
    lines.length = 0;
    expect((await runPromoteCommand(cmd('live', v1.dir))).status).toBe('promoted');
    const cur = (await readCurrent(home, project, 'live' as EnvironmentName))!.entry;
    expect(cur.regions).toMatchObject({ 'us-east-1': { image: { copy: 'present' } }, 'eu-west-1': { copy: 'present', image: { copy: 'present' } } });
    expect(lines.filter((l) => / copied .*blob/.test(l))).toEqual([]);
    for (const [region, repo] of Object.entries(regionRepo())) expect(await aliasImage(region, 'live')).toBe(`${repo}@${v1.digest}`);
  });

  it('a source manifest whose bytes do not hash to the recorded digest is refused: nothing deployed, nothing recorded', async () => {
    const v2 = await publishVersion('5002', 'v2');
    const data = join(stack.registry.root, 'data/docker/registry/v2/blobs/sha256', v2.digest.slice(7, 9), v2.digest.slice(7), 'data');
    const original = await readFile(data);
    await writeFile(data, Buffer.from(original.toString('utf8').replace('"size":', '"size": ')));
    try {
      const before = await readHistory(home, project, 'live' as EnvironmentName, {});
      await expect(runPromoteCommand(cmd('live', v2.dir))).rejects.toThrow(ImageIntegrityError);
      expect(await readHistory(home, project, 'live' as EnvironmentName, {})).toEqual(before);
      for (const [region, repo] of Object.entries(regionRepo())) expect(await aliasImage(region, 'live')).toBe(`${repo}@${v1.digest}`);
      expect(await new RegistryClient({ registry: stack.registries[1]!.host, scheme: 'http' }).headManifest('scorer', v2.digest)).toBeUndefined();
    } finally {
      await writeFile(data, original);
    }
  });

  it('once the source is whole again the next version copies only its new blobs; rollback restores every region to its copy of the previous image', async () => {
    const dir = join(ws, 'dist', '5002');
    const v2digest = (JSON.parse(await readFile(join(dir, 'artifact.json'), 'utf8')) as { image: { digest: string } }).image.digest;
    lines.length = 0;
    expect((await runPromoteCommand(cmd('live', dir))).status).toBe('promoted');
    // the base layer is shared with v1: only the config and the new layer are streamed
    expect(lines.some((l) => /\[eu-west-1\] copied .* \(2 blob\(s\) streamed, \d+ bytes; 0 mounted; 1 already there\)/.test(l))).toBe(true);
    for (const [region, repo] of Object.entries(regionRepo())) expect(await aliasImage(region, 'live')).toBe(`${repo}@${v2digest}`);
    const v1Live = (await readHistory(home, project, 'live' as EnvironmentName, {})).find((e) => e.version === '5001')!;
    const r = await runRollbackCommand(commands.rollback('live', { to: '5001' as Version }));
    expect(r.status).toBe('promoted');
    const cur = (await readCurrent(home, project, 'live' as EnvironmentName))!.entry;
    expect(cur).toMatchObject({ version: '5001', rollback: true });
    for (const [region, repo] of Object.entries(regionRepo())) {
      expect(cur.regions![region]).toMatchObject({ status: 'succeeded', image: { uri: `${repo}@${v1.digest}`, copy: 'present' }, deploy: { method: 'alias' } });
      // moto reports $LATEST's ImageUri for old versions: the alias' version number is what we check
      const alias = await lambdas[region]!.send(new GetAliasCommand({ FunctionName: `${project}-live`, Name: 'live' }));
      const was = v1Live.regions![region]!.deploy!;
      expect(was.target === 'lambda' && alias.FunctionVersion === was.functionVersion).toBe(true);
    }
  });

  it('a region without registry is refused in one line naming the buildonce.json field', async () => {
    const err = await oneLineRejection(runPromoteCommand(cmd('noreg', v1.dir)));
    expect(err.message).toMatch(/buildonce\.json environments\.noreg\.regions\.eu-west-1\.registry/);
    expect(err.message).not.toMatch(/us-east-1 has no registry/);
    expect(await readHistory(home, project, 'noreg' as EnvironmentName, {})).toEqual([]);
  });

  it("one region's Lambda update failing restores the region already moved to its registry's copy of the previous image; the entry records both", async () => {
    const dir = join(ws, 'dist', '5002');
    const v2digest = (JSON.parse(await readFile(join(dir, 'artifact.json'), 'utf8')) as { image: { digest: string } }).image.digest;
    const v1Prod = (await readHistory(home, project, 'prod' as EnvironmentName, {})).find((e) => e.version === '5001' && e.status === 'succeeded')!;
    void proxy.failNext('403', updateCodeIn('eu-west-1', 'prod'));
    const err = await oneLineRejection(runPromoteCommand(cmd('prod', dir)), RegionFailureError);
    expect(err.message).toMatch(/^5002 failed in prod \(seq \d+\): eu-west-1: .*AccessDenied.*; restored us-east-1 to 5001$/);
    const last = (await readHistory(home, project, 'prod' as EnvironmentName, {})).at(-1)!;
    expect(last).toMatchObject({ version: '5002', status: 'failed', deploy: null });
    expect(last.regions).toMatchObject({
      'us-east-1': {
        status: 'restored',
        image: { uri: `${regionRepo()['us-east-1']}@${v2digest}` },
        deploy: { imageUri: `${regionRepo()['us-east-1']}@${v2digest}` },
        restore: { method: 'alias', imageUri: `${regionRepo()['us-east-1']}@${v1.digest}` },
      },
      'eu-west-1': { status: 'failed', deploy: null, error: expect.stringMatching(/AccessDenied/) },
    });
    expect((await readCurrent(home, project, 'prod' as EnvironmentName))!.entry.version).toBe('5001');
    for (const [region, repo] of Object.entries(regionRepo())) {
      // the alias is back on the Lambda version 5001's deploy published from the region's own registry (moto
      // reports $LATEST's ImageUri for every version, so the version number is what is checked)
      const alias = await lambdas[region]!.send(new GetAliasCommand({ FunctionName: `${project}-prod`, Name: 'prod' }));
      const was = v1Prod.regions![region]!.deploy!;
      expect(was).toMatchObject({ imageUri: `${repo}@${v1.digest}` });
      expect(was.target === 'lambda' && alias.FunctionVersion === was.functionVersion).toBe(true);
    }
  });
});
