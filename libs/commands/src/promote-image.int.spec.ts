import { join } from 'node:path';
import { GetAliasCommand, GetFunctionCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { awsClients } from '@buildonce/aws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storedManifestKey } from '@buildonce/store';
import type { StoredManifest } from '@buildonce/artifact';
import { RegistryClient } from '@buildonce/image';
import {
  buildTestLambdaImage,
  createImageFunctions,
  createLambdaRole,
  createPlaceholderFunctions,
  lambdaCommands,
  startImageStack,
  motoWorkspace,
  type ImageStack,
} from '@buildonce/testing';
import { runPromoteCommand, runPublishCommand, runResolveCommand, runRollbackCommand } from './commands';
import { readCurrent, readHistory } from '@buildonce/ledger';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';

let stack: ImageStack;
let lambda: LambdaClient;
const project = 'rust-scorer-image';
let penv: NodeJS.ProcessEnv;

beforeAll(async () => {
  stack = await startImageStack();
});
const world = motoWorkspace({
  moto: () => stack.moto,
  bucket: 'image-promote',
  prefix: 'promote-image-ws-',
  config: { environments: [{ name: 'dev' }, { name: 'staging' }, { name: 'prod' }] },
});
beforeAll(world.start);
afterAll(world.stop);
beforeAll(async () => {
  const { moto } = stack;
  penv = { ...process.env, BUILDONCE_STORE: '', BUILDONCE_REGISTRY: `${stack.registry.host}/rust-scorer` };
  lambda = awsClients({ env: moto.env }).lambda();
  // IaC: image functions (any placeholder image), one zip function for the package-type check
  await createImageFunctions(
    lambda,
    ['dev', 'staging', 'prod'].map((env) => `${project}-${env}`),
    `${stack.registry.host}/placeholder:latest`,
    await createLambdaRole(moto.endpoint, 'image-role'),
  );
});
afterAll(async () => {
  await stack?.stop();
});

/** Builds and publishes image version `version` whose bootstrap says `body`. @returns the image URI by digest */
async function publishVersion(version: string, body: string): Promise<{ dir: string; uri: string }> {
  const dir = join(world.workspaceRoot, 'dist', version);
  await buildTestLambdaImage({ project: project as ProjectName, version, body, base: stack.base, baseRegistry: stack.registry.host, outDir: dir });
  const r = await runPublishCommand({
    project: project as ProjectName,
    workspaceRoot: world.workspaceRoot,
    outputDir: dir,
    store: world.storeUrl,
    processEnv: penv,
    log: () => undefined,
  });
  return { dir, uri: r.push!.uri };
}

const lines: string[] = [];
const commands = lambdaCommands(() => ({ project, workspaceRoot: world.workspaceRoot, processEnv: penv, log: (l) => lines.push(l) }));
const cmd = (env: string, dir: string) => commands.promote(env, dir, { clients: { lambda } });

async function aliasImage(env: string): Promise<string | undefined> {
  const alias = await lambda.send(new GetAliasCommand({ FunctionName: `${project}-${env}`, Name: env }));
  const fn = await lambda.send(new GetFunctionCommand({ FunctionName: `${project}-${env}`, Qualifier: alias.FunctionVersion }));
  return fn.Code?.ImageUri;
}

describe('oci-image promotion (real registry + moto Lambda PackageType Image)', () => {
  let v1: { dir: string; uri: string };
  let v2: { dir: string; uri: string };

  it('promotes dev → staging → prod by digest; resolve prints the image URI by digest', async () => {
    v1 = await publishVersion('3001', 'v1');
    expect(v1.uri).toMatch(new RegExp(`^${stack.registry.host}/rust-scorer@sha256:[0-9a-f]{64}$`));
    for (const env of ['dev', 'staging', 'prod']) expect((await runPromoteCommand(cmd(env, v1.dir))).status).toBe('promoted');
    for (const env of ['dev', 'staging', 'prod']) expect(await aliasImage(env)).toBe(v1.uri);
    const cur = await readCurrent(world.store, project as ProjectName, 'prod' as EnvironmentName);
    expect(cur!.entry.artifact).toMatchObject({ kind: 'oci-image', imageUri: v1.uri });
    expect(cur!.entry.deploy).toMatchObject({ target: 'lambda', imageUri: v1.uri, method: 'code', alias: 'prod' });
    const printed: string[] = [];
    await runResolveCommand({
      project: project as ProjectName,
      workspaceRoot: world.workspaceRoot,
      env: 'prod' as EnvironmentName,
      processEnv: penv,
      print: (t) => printed.push(t),
      log: () => undefined,
    });
    expect(printed).toEqual([v1.uri]);
  });

  it('prod needs staging first; a second version moves every alias to its digest, rollback restores the previous digest', async () => {
    v2 = await publishVersion('3002', 'v2');
    await expect(runPromoteCommand(cmd('prod', v2.dir))).rejects.toThrow(/staging/);
    for (const env of ['dev', 'staging', 'prod']) expect((await runPromoteCommand(cmd(env, v2.dir))).status).toBe('promoted');
    expect(await aliasImage('prod')).toBe(v2.uri);
    const v1Prod = (await readHistory(world.store, project as ProjectName, 'prod' as EnvironmentName, {})).find((e) => e.version === '3001')!.deploy!;
    const v2Prod = (await readCurrent(world.store, project as ProjectName, 'prod' as EnvironmentName))!.entry.deploy!;
    expect(v2Prod).toMatchObject({ imageUri: v2.uri });
    expect(v2Prod.target === 'lambda' && v1Prod.target === 'lambda' && v2Prod.functionVersion !== v1Prod.functionVersion).toBe(true);
    const r = await runRollbackCommand(commands.rollback('prod', { clients: { lambda }, log: () => undefined }));
    expect(r.status).toBe('promoted');
    // the alias is back on the Lambda version published for v1 (moto copies function versions shallowly, so
    // GetFunction of an old version reports $LATEST's ImageUri: the alias' version number is what we check)
    const alias = await lambda.send(new GetAliasCommand({ FunctionName: `${project}-prod`, Name: 'prod' }));
    expect(v1Prod.target === 'lambda' && alias.FunctionVersion).toBe(v1Prod.target === 'lambda' ? v1Prod.functionVersion : '');
    const cur = await readCurrent(world.store, project as ProjectName, 'prod' as EnvironmentName);
    expect(cur!.entry).toMatchObject({ version: '3001', rollback: true });
    expect(cur!.entry.deploy).toMatchObject({ method: 'alias', imageUri: v1.uri });
    expect(
      (
        await runResolveCommand({
          project: project as ProjectName,
          workspaceRoot: world.workspaceRoot,
          env: 'prod' as EnvironmentName,
          processEnv: penv,
          print: () => undefined,
          log: () => undefined,
        })
      ).artifactUri,
    ).toBe(v1.uri);
  });

  it('preflight refuses a function with PackageType Zip and an image deleted from the registry; the ledger does not move', async () => {
    const role = await createLambdaRole(stack.moto.endpoint, 'image-role-2');
    await createPlaceholderFunctions(lambda, stack.moto.endpoint, [`${project}-pr-1`], role);
    await expect(runPromoteCommand(cmd('pr-1', v1.dir))).rejects.toThrow(/has PackageType Zip but rust-scorer-image@3001 is a oci-image/);
    expect(await readHistory(world.store, project as ProjectName, 'pr-1' as EnvironmentName, {})).toEqual([]);

    await createImageFunctions(lambda, [`${project}-pr-2`], `${stack.registry.host}/placeholder:latest`, role);
    const v3 = await publishVersion('3003', 'v3');
    const digest = v3.uri.split('@')[1]!;
    expect(await new RegistryClient({ registry: stack.registry.host, scheme: 'http' }).deleteManifest('rust-scorer', digest)).toBe(true);
    await expect(runPromoteCommand(cmd('pr-2', v3.dir))).rejects.toThrow(/is not in its registry/);
    expect(await readHistory(world.store, project as ProjectName, 'pr-2' as EnvironmentName, {})).toEqual([]);
  });

  it('a stored record whose uri names another digest in the registry (or whose digest was swapped too) is refused: nothing deploys it', async () => {
    const v4 = await publishVersion('3004', 'v4');
    const key = storedManifestKey(project as ProjectName, '3004' as Version);
    const original = (await world.store.getBytes(key))!;
    const otherDigest = v1.uri.split('@')[1]!; // present in the registry: verify/promote must still refuse it
    const tamperings: ((m: StoredManifest) => void)[] = [
      (m) => (m.registry!.uri = `${m.registry!.repository}@${otherDigest}`),
      (m) => {
        m.registry!.uri = `${m.registry!.repository}@${otherDigest}`;
        m.manifest.image!.digest = otherDigest;
      },
    ];
    const aliasBefore = await aliasImage('dev');
    for (const t of tamperings) {
      const m = JSON.parse(original.bytes.toString()) as StoredManifest;
      t(m);
      const now = (await world.store.getBytes(key))!;
      expect((await world.store.putBytesIfMatch(key, Buffer.from(JSON.stringify(m)), now.etag)).status).toBe('written');
      const before = (await readHistory(world.store, project as ProjectName, 'dev' as EnvironmentName, {})).length;
      await expect(runPromoteCommand(cmd('dev', v4.dir))).rejects.toThrow(/invalid stored manifest .*manifest\.json: (registry\.uri|manifest\.image\.digest)/);
      expect((await readHistory(world.store, project as ProjectName, 'dev' as EnvironmentName, {})).length).toBe(before);
      expect(await aliasImage('dev')).toBe(aliasBefore);
    }
    const now = (await world.store.getBytes(key))!;
    await world.store.putBytesIfMatch(key, original.bytes, now.etag);
    expect((await runPromoteCommand(cmd('dev', v4.dir))).status).toBe('promoted');
    expect(await aliasImage('dev')).toBe(v4.uri);
  });
});
